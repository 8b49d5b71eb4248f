import { GgmlType } from "../gguf/ggml-types.js";
import { signedAbsMax } from "./block-stats.js";
import { blockwiseOrder, fmaBlockLanes, hsumFloat8 } from "./float-order.js";
import { QuantFormat } from "./format.js";
import { readHalf, writeHalf } from "./half.js";
import { f32, roundAway } from "./rounding.js";
import { int8 } from "./views.js";

const QK = 32;

/**
 * The 8-bit block types: d (f16) | [s = d·Σq (f16), Q8_1 only] | qs[32] (int8). Q8_0 is the activation
 * partner of Q4_0/Q5_0/Q8_0, Q8_1 of Q4_1/Q5_1.
 */
export function eightBitFormat(type: GgmlType.Q8_0 | GgmlType.Q8_1, name: string, withSum: boolean): QuantFormat {
  const qs = withSum ? 4 : 2;
  const size = qs + QK;
  return {
    type,
    name,
    blockSize: QK,
    typeSize: size,
    dotType: type,
    dequantizeRow(src, so, dst, doff, n) {
      for (let b = 0; b < n / QK; b++) {
        const at = so + b * size;
        const d = readHalf(src, at);
        for (let j = 0; j < QK; j++) dst[doff + b * QK + j] = f32(int8(src[at + qs + j]) * d);
      }
    },
    quantizeRow(src, so, dst, doff, n) {
      for (let b = 0; b < n / QK; b++) {
        const x = so + b * QK;
        const at = doff + b * size;
        const d = f32(signedAbsMax(src, x, QK).amax / 127);
        const id = d ? f32(1 / d) : 0;
        let sum = 0;
        for (let j = 0; j < QK; j++) {
          const q = roundAway(f32(src[x + j] * id));
          dst[at + qs + j] = q & 0xff;
          sum += q;
        }
        writeHalf(dst, at, d);
        if (withSum) writeHalf(dst, at + 2, f32(sum * d));
      }
    },
    vecDot(n, w, wo, a, ao) {
      const acc = new Float32Array(8);
      const products = new Int32Array(QK);
      for (let b = 0; b < n / QK; b++) {
        const x = wo + b * size;
        const y = ao + b * size;
        for (let j = 0; j < QK; j++) products[j] = int8(w[x + qs + j]) * int8(a[y + qs + j]);
        fmaBlockLanes(acc, f32(readHalf(w, x) * readHalf(a, y)), products);
      }
      return hsumFloat8(acc);
    },
    blockwiseDot(n, w, wo, a, ao) {
      return blockwiseOrder(
        n / QK,
        (b) => {
          let sum = 0;
          for (let j = 0; j < QK; j++) sum += int8(w[wo + b * size + qs + j]) * int8(a[ao + b * size + qs + j]);
          return sum;
        },
        (b) => f32(readHalf(w, wo + b * size) * readHalf(a, ao + b * size)),
      );
    },
  };
}

export const Q8_0 = eightBitFormat(GgmlType.Q8_0, "Q8_0", false);
