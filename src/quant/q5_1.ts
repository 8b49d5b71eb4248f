import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { readHalf, writeHalf } from "./half.js";
import { fiveBit, packFiveBit } from "./q5_0.js";
import { f32, truncInt8 } from "./rounding.js";
import { fmaBlockLanes, hsumFloat8 } from "./float-order.js";
import { int8 } from "./views.js";

/** block_q5_1: d (f16) | m (f16) | qh (u32) | qs[16]; value = q·d + m. */
const QK = 32;
const SIZE = 24;

export const Q5_1: QuantFormat = {
  type: GgmlType.Q5_1,
  name: "Q5_1",
  blockSize: QK,
  typeSize: SIZE,
  dotType: GgmlType.Q8_1,
  dequantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const at = so + b * SIZE;
      const d = readHalf(src, at);
      const m = readHalf(src, at + 2);
      for (let j = 0; j < QK; j++) dst[doff + b * QK + j] = f32(f32(fiveBit(src, at + 4, at + 8, j) * d) + m);
    }
  },
  quantizeRow(src, so, dst, doff, n) {
    const q = new Uint8Array(QK);
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      let min = Infinity;
      let max = -Infinity;
      for (let j = 0; j < QK; j++) {
        min = Math.min(min, src[x + j]);
        max = Math.max(max, src[x + j]);
      }
      const d = f32(f32(max - min) / 31);
      const id = d ? f32(1 / d) : 0;
      writeHalf(dst, at, d);
      writeHalf(dst, at + 2, min);
      // ggml casts to uint8_t without clamping; the rounding keeps it within 0..31 for finite input.
      for (let j = 0; j < QK; j++) q[j] = truncInt8(f32(f32(f32(src[x + j] - min) * id) + 0.5)) & 0xff;
      packFiveBit(q, dst, at + 4, at + 8);
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
      for (let j = 0; j < QK; j++) products[j] = fiveBit(w, x + 4, x + 8, j) * int8(a[y + 4 + j]);
      fmaBlockLanes(acc, f32(readHalf(w, x) * readHalf(a, y)), products);
    }
    return f32(hsumFloat8(acc) + mins);
  },
};
