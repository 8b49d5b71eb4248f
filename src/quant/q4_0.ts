import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { readHalf, writeHalf } from "./half.js";
import { f32, truncInt8 } from "./rounding.js";
import { fmaBlockLanes, hsumFloat8 } from "./float-order.js";
import { int8 } from "./views.js";

/** block_q4_0: d (f16) | qs[16]: element j in the low nibble of qs[j], element j+16 in the high nibble. */
const QK = 32;
const SIZE = 18;

export const Q4_0: QuantFormat = {
  type: GgmlType.Q4_0,
  name: "Q4_0",
  blockSize: QK,
  typeSize: SIZE,
  dotType: GgmlType.Q8_0,
  dequantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const at = so + b * SIZE;
      const d = readHalf(src, at);
      const y = doff + b * QK;
      for (let j = 0; j < 16; j++) {
        const q = src[at + 2 + j];
        dst[y + j] = f32(((q & 0xf) - 8) * d);
        dst[y + j + 16] = f32(((q >> 4) - 8) * d);
      }
    }
  },
  quantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      let amax = 0;
      let max = 0;
      for (let j = 0; j < QK; j++) {
        const v = src[x + j];
        if (amax < Math.abs(v)) [amax, max] = [Math.abs(v), v];
      }
      const d = f32(max / -8);
      const id = d ? f32(1 / d) : 0;
      writeHalf(dst, at, d);
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(15, truncInt8(f32(f32(src[x + j] * id) + 8.5)));
        const q1 = Math.min(15, truncInt8(f32(f32(src[x + j + 16] * id) + 8.5)));
        dst[at + 2 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      }
    }
  },
  vecDot(n, w, wo, a, ao) {
    const acc = new Float32Array(8);
    const products = new Int32Array(QK);
    for (let b = 0; b < n / QK; b++) {
      const x = wo + b * SIZE;
      const y = ao + b * 34;
      for (let j = 0; j < 16; j++) {
        const q = w[x + 2 + j];
        products[j] = ((q & 0xf) - 8) * int8(a[y + 2 + j]);
        products[j + 16] = ((q >> 4) - 8) * int8(a[y + 18 + j]);
      }
      fmaBlockLanes(acc, f32(readHalf(w, x) * readHalf(a, y)), products);
    }
    return hsumFloat8(acc);
  },
};
