import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { readHalf, writeHalf } from "./half.js";
import { f32, truncInt8 } from "./rounding.js";
import { fmaBlockLanes, hsumFloat8 } from "./float-order.js";
import { int8 } from "./views.js";

/** block_q4_1: d (f16) | m (f16) | qs[16]; value = q·d + m. */
const QK = 32;
const SIZE = 20;

export const Q4_1: QuantFormat = {
  type: GgmlType.Q4_1,
  name: "Q4_1",
  blockSize: QK,
  typeSize: SIZE,
  dotType: GgmlType.Q8_1,
  dequantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const at = so + b * SIZE;
      const d = readHalf(src, at);
      const m = readHalf(src, at + 2);
      const y = doff + b * QK;
      for (let j = 0; j < 16; j++) {
        const q = src[at + 4 + j];
        dst[y + j] = f32(f32((q & 0xf) * d) + m);
        dst[y + j + 16] = f32(f32((q >> 4) * d) + m);
      }
    }
  },
  quantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      let min = Infinity;
      let max = -Infinity;
      for (let j = 0; j < QK; j++) {
        min = Math.min(min, src[x + j]);
        max = Math.max(max, src[x + j]);
      }
      const d = f32(f32(max - min) / 15);
      const id = d ? f32(1 / d) : 0;
      writeHalf(dst, at, d);
      writeHalf(dst, at + 2, min);
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(15, truncInt8(f32(f32(f32(src[x + j] - min) * id) + 0.5)));
        const q1 = Math.min(15, truncInt8(f32(f32(f32(src[x + j + 16] - min) * id) + 0.5)));
        dst[at + 4 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      }
    }
  },
  vecDot(n, w, wo, a, ao) {
    const acc = new Float32Array(8);
    const products = new Int32Array(QK);
    let mins = 0;
    for (let b = 0; b < n / QK; b++) {
      const x = wo + b * SIZE;
      const y = ao + b * 36;
      mins = f32(mins + f32(readHalf(w, x + 2) * readHalf(a, y + 2)));
      for (let j = 0; j < 16; j++) {
        const q = w[x + 4 + j];
        products[j] = (q & 0xf) * int8(a[y + 4 + j]);
        products[j + 16] = (q >> 4) * int8(a[y + 20 + j]);
      }
      fmaBlockLanes(acc, f32(readHalf(w, x) * readHalf(a, y)), products);
    }
    return f32(hsumFloat8(acc) + mins);
  },
};
