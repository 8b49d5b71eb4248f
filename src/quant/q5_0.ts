import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { readHalf, writeHalf } from "./half.js";
import { f32, truncInt8 } from "./rounding.js";
import { fmaBlockLanes, hsumFloat8 } from "./float-order.js";
import { int8 } from "./views.js";

/** block_q5_0: d (f16) | qh (u32, fifth bits) | qs[16] (low nibbles, as Q4_0). */
const QK = 32;
const SIZE = 22;

function highBits(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

/** The 5-bit value j (0..31) of a block whose qh starts at `qhAt` and qs at `qsAt`. */
export function fiveBit(bytes: Uint8Array, qhAt: number, qsAt: number, j: number): number {
  const qh = highBits(bytes, qhAt);
  const nibble = j < 16 ? bytes[qsAt + j] & 0xf : bytes[qsAt + j - 16] >> 4;
  return nibble | (((qh >>> j) & 1) << 4);
}

/** Packs 32 five-bit values into qh/qs at `qhAt`/`qsAt`. */
export function packFiveBit(values: ArrayLike<number>, bytes: Uint8Array, qhAt: number, qsAt: number): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const a = values[j];
    const b = values[j + 16];
    bytes[qsAt + j] = (a & 0xf) | ((b & 0xf) << 4);
    qh |= ((a >> 4) & 1) << j;
    qh |= ((b >> 4) & 1) << (j + 16);
  }
  qh >>>= 0;
  for (let k = 0; k < 4; k++) bytes[qhAt + k] = (qh >>> (8 * k)) & 0xff;
}

export const Q5_0: QuantFormat = {
  type: GgmlType.Q5_0,
  name: "Q5_0",
  blockSize: QK,
  typeSize: SIZE,
  dotType: GgmlType.Q8_0,
  dequantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const at = so + b * SIZE;
      const d = readHalf(src, at);
      for (let j = 0; j < QK; j++) dst[doff + b * QK + j] = f32((fiveBit(src, at + 2, at + 6, j) - 16) * d);
    }
  },
  quantizeRow(src, so, dst, doff, n) {
    const q = new Uint8Array(QK);
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      let amax = 0;
      let max = 0;
      for (let j = 0; j < QK; j++) {
        const v = src[x + j];
        if (amax < Math.abs(v)) [amax, max] = [Math.abs(v), v];
      }
      const d = f32(max / -16);
      const id = d ? f32(1 / d) : 0;
      writeHalf(dst, at, d);
      for (let j = 0; j < QK; j++) q[j] = Math.min(31, truncInt8(f32(f32(src[x + j] * id) + 16.5)));
      packFiveBit(q, dst, at + 2, at + 6);
    }
  },
  vecDot(n, w, wo, a, ao) {
    const acc = new Float32Array(8);
    const products = new Int32Array(QK);
    for (let b = 0; b < n / QK; b++) {
      const x = wo + b * SIZE;
      const y = ao + b * 34;
      for (let j = 0; j < QK; j++) products[j] = (fiveBit(w, x + 2, x + 6, j) - 16) * int8(a[y + 2 + j]);
      fmaBlockLanes(acc, f32(readHalf(w, x) * readHalf(a, y)), products);
    }
    return hsumFloat8(acc);
  },
};
