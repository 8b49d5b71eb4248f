import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { readHalf, writeHalf } from "./half.js";
import { f32, roundAway } from "./rounding.js";
import { int8 } from "./views.js";

/** block_q8_1: d (f16) | s = d·Σqs (f16) | qs[32] (int8). The activation partner of Q4_1 and Q5_1. */
const QK = 32;
const SIZE = 36;

export const Q8_1: QuantFormat = {
  type: GgmlType.Q8_1,
  name: "Q8_1",
  blockSize: QK,
  typeSize: SIZE,
  dotType: GgmlType.Q8_1,
  dequantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const at = so + b * SIZE;
      const d = readHalf(src, at);
      for (let j = 0; j < QK; j++) dst[doff + b * QK + j] = f32(int8(src[at + 4 + j]) * d);
    }
  },
  quantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      let amax = 0;
      for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(src[x + j]));
      const d = f32(amax / 127);
      const id = d ? f32(1 / d) : 0;
      let sum = 0;
      for (let j = 0; j < QK; j++) {
        const q = roundAway(f32(src[x + j] * id));
        dst[at + 4 + j] = q & 0xff;
        sum += q;
      }
      writeHalf(dst, at, d);
      writeHalf(dst, at + 2, f32(sum * d));
    }
  },
  vecDot(n, w, wo, a, ao) {
    let sum = 0;
    for (let b = 0; b < n / QK; b++) {
      const x = wo + b * SIZE;
      const y = ao + b * SIZE;
      let sumi = 0;
      for (let j = 0; j < QK; j++) sumi += int8(w[x + 4 + j]) * int8(a[y + 4 + j]);
      sum += sumi * f32(readHalf(w, x) * readHalf(a, y));
    }
    return f32(sum);
  },
};
