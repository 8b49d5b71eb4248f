import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { dotBf16Order } from "./float-order.js";
import { halfView } from "./views.js";
import { bf16ToFloat, floatToBf16 } from "./half.js";

export const BF16: QuantFormat = {
  type: GgmlType.BF16,
  name: "BF16",
  blockSize: 1,
  typeSize: 2,
  dotType: GgmlType.BF16,
  dequantizeRow(src, srcOffset, dst, dstOffset, n) {
    const h = halfView(src, srcOffset, n);
    for (let i = 0; i < n; i++) dst[dstOffset + i] = bf16ToFloat(h[i]);
  },
  quantizeRow(src, srcOffset, dst, dstOffset, n) {
    const h = halfView(dst, dstOffset, n);
    for (let i = 0; i < n; i++) h[i] = floatToBf16(src[srcOffset + i]);
  },
  vecDot(n, w, wOffset, a, aOffset) {
    const x = halfView(w, wOffset, n);
    const y = halfView(a, aOffset, n);
    return dotBf16Order(n, (i) => bf16ToFloat(x[i]), (i) => bf16ToFloat(y[i]));
  },
};
