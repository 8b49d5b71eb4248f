import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { QK_K, Q8_K_SIZE, q8kBlockSum, q8kScale } from "./q8_k.js";
import { f32 } from "./rounding.js";
import { int8 } from "./views.js";

/**
 * A k-quant super-block unpacked to integers: every element is d·scale[s]·q − dmin·min[s], with s the
 * sub-block (16 or 32 elements). Unpacking once lets one dequantizer and one dot product serve all types.
 */
export interface KBlock {
  q: Int8Array; // 256 integer levels
  scale: Int32Array; // per sub-block
  min: Int32Array; // per sub-block (zero for the symmetric types)
  d: number;
  dmin: number;
}

export function newKBlock(): KBlock {
  return { q: new Int8Array(QK_K), scale: new Int32Array(16), min: new Int32Array(16), d: 0, dmin: 0 };
}

export interface KQuantSpec {
  type: GgmlType;
  name: string;
  typeSize: number;
  subSize: 16 | 32;
  unpack(bytes: Uint8Array, at: number, out: KBlock): void;
  quantizeBlock(x: Float32Array, xo: number, bytes: Uint8Array, at: number): void;
}

export function kQuantFormat(spec: KQuantSpec): QuantFormat {
  const block = newKBlock();
  const subs = QK_K / spec.subSize;
  return {
    type: spec.type,
    name: spec.name,
    blockSize: QK_K,
    typeSize: spec.typeSize,
    dotType: GgmlType.Q8_K,
    dequantizeRow(src, so, dst, doff, n) {
      for (let b = 0; b < n / QK_K; b++) {
        spec.unpack(src, so + b * spec.typeSize, block);
        for (let s = 0; s < subs; s++) {
          const dl = f32(block.d * block.scale[s]);
          const ml = f32(block.dmin * block.min[s]);
          for (let k = 0; k < spec.subSize; k++) {
            const e = s * spec.subSize + k;
            dst[doff + b * QK_K + e] = f32(f32(dl * block.q[e]) - ml);
          }
        }
      }
    },
    quantizeRow(src, so, dst, doff, n) {
      for (let b = 0; b < n / QK_K; b++) spec.quantizeBlock(src, so + b * QK_K, dst, doff + b * spec.typeSize);
    },
    vecDot(n, w, wo, a, ao) {
      let sum = 0;
      for (let b = 0; b < n / QK_K; b++) {
        spec.unpack(w, wo + b * spec.typeSize, block);
        const y = ao + b * Q8_K_SIZE;
        let scaled = 0;
        let mins = 0;
        for (let s = 0; s < subs; s++) {
          let isum = 0;
          for (let k = 0; k < spec.subSize; k++) {
            const e = s * spec.subSize + k;
            isum += block.q[e] * int8(a[y + 4 + e]);
          }
          scaled += block.scale[s] * isum;
          if (block.min[s] !== 0) {
            const groups = spec.subSize / 16;
            let qsum = 0;
            for (let g = 0; g < groups; g++) qsum += q8kBlockSum(a, y, s * groups + g);
            mins += block.min[s] * qsum;
          }
        }
        const yd = q8kScale(a, y);
        sum += f32(yd * block.d) * scaled - f32(yd * block.dmin) * mins;
      }
      return f32(sum);
    },
  };
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j, packed into 12 bytes at `at`. */
export function scaleMinK4(bytes: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [bytes[at + j] & 63, bytes[at + j + 4] & 63];
  return [
    (bytes[at + j + 4] & 0xf) | ((bytes[at + j - 4] >> 6) << 4),
    (bytes[at + j + 4] >> 4) | ((bytes[at + j] >> 6) << 4),
  ];
}

/** Inverse of scaleMinK4 for all 8 sub-blocks. */
export function packScaleMinK4(ls: ArrayLike<number>, lm: ArrayLike<number>, bytes: Uint8Array, at: number): void {
  bytes.fill(0, at, at + 12);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      bytes[at + j] = ls[j];
      bytes[at + j + 4] = lm[j];
    } else {
      bytes[at + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      bytes[at + j - 4] |= (ls[j] >> 4) << 6;
      bytes[at + j] |= (lm[j] >> 4) << 6;
    }
  }
}

export { int8 };
