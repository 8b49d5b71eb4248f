import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { dotF32Order } from "./float-order.js";
import { halfView } from "./views.js";
import { floatToHalf, HALF_TO_FLOAT } from "./half.js";

export const F16: QuantFormat = {
  type: GgmlType.F16,
  name: "F16",
  blockSize: 1,
  typeSize: 2,
  dotType: GgmlType.F16,
  dequantizeRow(src, srcOffset, dst, dstOffset, n) {
    const h = halfView(src, srcOffset, n);
    for (let i = 0; i < n; i++) dst[dstOffset + i] = HALF_TO_FLOAT[h[i]];
  },
  quantizeRow(src, srcOffset, dst, dstOffset, n) {
    const h = halfView(dst, dstOffset, n);
    for (let i = 0; i < n; i++) h[i] = floatToHalf(src[srcOffset + i]);
  },
  vecDot(n, w, wOffset, a, aOffset) {
    const x = halfView(w, wOffset, n);
    const y = halfView(a, aOffset, n);
    return dotF32Order(n, (i) => HALF_TO_FLOAT[x[i]], (i) => HALF_TO_FLOAT[y[i]]);
  },
};
