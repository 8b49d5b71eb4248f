import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { readHalf, writeHalf } from "./half.js";
import { f32, roundAway } from "./rounding.js";
import { fmaBlockLanes, hsumFloat8 } from "./float-order.js";
import { int8 } from "./views.js";

/** block_q8_0: d (f16) | qs[32] (int8). */
const QK = 32;
const SIZE = 34;

export const Q8_0: QuantFormat = {
  type: GgmlType.Q8_0,
  name: "Q8_0",
  blockSize: QK,
  typeSize: SIZE,
  dotType: GgmlType.Q8_0,
  dequantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const at = so + b * SIZE;
      const d = readHalf(src, at);
      for (let j = 0; j < QK; j++) dst[doff + b * QK + j] = f32(int8(src[at + 2 + j]) * d);
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
      writeHalf(dst, at, d);
      for (let j = 0; j < QK; j++) dst[at + 2 + j] = roundAway(f32(src[x + j] * id)) & 0xff;
    }
  },
  vecDot(n, w, wo, a, ao) {
    const acc = new Float32Array(8);
    const products = new Int32Array(QK);
    for (let b = 0; b < n / QK; b++) {
      const x = wo + b * SIZE;
      const y = ao + b * SIZE;
      for (let j = 0; j < QK; j++) products[j] = int8(w[x + 2 + j]) * int8(a[y + 2 + j]);
      fmaBlockLanes(acc, f32(readHalf(w, x) * readHalf(a, y)), products);
    }
    return hsumFloat8(acc);
  },
};
