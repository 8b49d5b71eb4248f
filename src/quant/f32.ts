import { GgmlType } from "../gguf/ggml-types.js";
import { QuantFormat } from "./format.js";
import { dotF32Order } from "./float-order.js";
import { floatView } from "./views.js";

export const F32: QuantFormat = {
  type: GgmlType.F32,
  name: "F32",
  blockSize: 1,
  typeSize: 4,
  dotType: GgmlType.F32,
  dequantizeRow(src, srcOffset, dst, dstOffset, n) {
    dst.set(floatView(src, srcOffset, n), dstOffset);
  },
  quantizeRow(src, srcOffset, dst, dstOffset, n) {
    floatView(dst, dstOffset, n).set(src.subarray(srcOffset, srcOffset + n));
  },
  vecDot(n, w, wOffset, a, aOffset) {
    const x = floatView(w, wOffset, n);
    const y = floatView(a, aOffset, n);
    return dotF32Order(n, (i) => x[i], (i) => y[i]);
  },
};
