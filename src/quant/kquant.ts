import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { QK_K, Q8_K_SIZE, q8kBlockSum, q8kScale } from "./q8_k.js";
import { fma32, hsumFloat8 } from "./float-order.js";
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
  /**
   * How ggml's AVX2 kernel folds the min term into the sum: into the eight accumulator lanes (Q2_K),
   * four lanes of its own (Q4_K), a scalar (Q5_K), or not at all (symmetric types).
   */
  mins: "lanes8" | "lanes4" | "scalar" | "none";
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
      const acc = new Float32Array(8);
      const minLanes = new Float32Array(4);
      const lanes = new Int32Array(8);
      let minsScalar = 0;
      for (let b = 0; b < n / QK_K; b++) {
        spec.unpack(w, wo + b * spec.typeSize, block);
        const y = ao + b * Q8_K_SIZE;
        const yd = q8kScale(a, y);
        const d = f32(yd * block.d);
        const dminNeg = f32(-yd * block.dmin);
        if (spec.mins !== "none") {
          // Σ min·(sum of the activations under that sub-block), the integer part exact
          const minTerm = (s: number): number => block.min[s] * subBlockSum(a, y, s, spec.subSize);
          if (spec.mins === "lanes8") for (let l = 0; l < 8; l++) acc[l] = fma32(dminNeg, minTerm(2 * l) + minTerm(2 * l + 1), acc[l]);
          if (spec.mins === "lanes4") for (let l = 0; l < 4; l++) minLanes[l] = fma32(dminNeg, minTerm(2 * l) + minTerm(2 * l + 1), minLanes[l]);
          if (spec.mins === "scalar") {
            let total = 0;
            for (let s = 0; s < subs; s++) total += minTerm(s);
            minsScalar = f32(minsScalar + f32(dminNeg * total));
          }
        }
        // Integer products land in eight 32-bit lanes: lane l holds elements 4l..4l+3 of every 32.
        lanes.fill(0);
        for (let e = 0; e < QK_K; e++) {
          lanes[(e & 31) >> 2] += block.scale[Math.floor(e / spec.subSize)] * block.q[e] * int8(a[y + 4 + e]);
        }
        for (let l = 0; l < 8; l++) acc[l] = fma32(d, lanes[l], acc[l]);
      }
      const total = hsumFloat8(acc);
      if (spec.mins === "lanes4") {
        const folded = f32(f32(minLanes[0] + minLanes[2]) + f32(minLanes[1] + minLanes[3]));
        return f32(total + folded);
      }
      return spec.mins === "scalar" ? f32(total + minsScalar) : total;
    },
    blockwiseDot(n, w, wo, a, ao) {
      let acc = 0;
      for (let b = 0; b < n / QK_K; b++) {
        spec.unpack(w, wo + b * spec.typeSize, block);
        const y = ao + b * Q8_K_SIZE;
        const yd = q8kScale(a, y);
        let isum = 0;
        for (let e = 0; e < QK_K; e++) isum += block.scale[Math.floor(e / spec.subSize)] * block.q[e] * int8(a[y + 4 + e]);
        acc = fma32(f32(isum), f32(yd * block.d), acc);
        if (spec.mins === "none") continue;
        let msum = 0;
        for (let s = 0; s < subs; s++) msum += block.min[s] * subBlockSum(a, y, s, spec.subSize);
        acc = fma32(f32(msum), f32(-block.dmin * yd), acc);
      }
      return acc;
    },
  };
}

/** Sum of the Q8_K activations under sub-block s (16 or 32 elements) of the block at y. */
function subBlockSum(a: Uint8Array, y: number, s: number, subSize: number): number {
  const groups = subSize / 16;
  let sum = 0;
  for (let g = 0; g < groups; g++) sum += q8kBlockSum(a, y, s * groups + g);
  return sum;
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
