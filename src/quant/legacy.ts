import { GgmlType } from "../gguf/ggml-types.js";
import { blockwiseOrder, fmaBlockLanes, hsumFloat8 } from "./float-order.js";
import { QuantFormat } from "./format.js";
import { readHalf } from "./half.js";
import { f32 } from "./rounding.js";
import { int8 } from "./views.js";

const QK = 32;

/**
 * What tells the 32-element legacy blocks apart: where the levels sit and whether a block has a min.
 * Symmetric types (Q4_0, Q5_0) store d and subtract a fixed bias; the "_1" types store d and m.
 */
export interface LegacyBlockSpec {
  type: GgmlType;
  name: string;
  typeSize: number;
  /** Unsigned level of element j (0..31) of the block at `at`. */
  level(bytes: Uint8Array, at: number, j: number): number;
  /** Symmetric: the level that means zero (8 or 16). Omitted for types with a min. */
  bias?: number;
  quantizeRow: QuantFormat["quantizeRow"];
}

export function legacyFormat(spec: LegacyBlockSpec): QuantFormat {
  const { typeSize: size, bias } = spec;
  const withMin = bias === undefined;
  const partnerSize = withMin ? 36 : 34; // Q8_1 or Q8_0
  const partnerQs = withMin ? 4 : 2;
  return {
    type: spec.type,
    name: spec.name,
    blockSize: QK,
    typeSize: size,
    dotType: withMin ? GgmlType.Q8_1 : GgmlType.Q8_0,
    dequantizeRow(src, so, dst, doff, n) {
      for (let b = 0; b < n / QK; b++) {
        const at = so + b * size;
        const d = readHalf(src, at);
        const m = withMin ? readHalf(src, at + 2) : 0;
        for (let j = 0; j < QK; j++) {
          const level = spec.level(src, at, j);
          dst[doff + b * QK + j] = withMin ? f32(f32(level * d) + m) : f32((level - bias) * d);
        }
      }
    },
    quantizeRow: spec.quantizeRow,
    vecDot(n, w, wo, a, ao) {
      const acc = new Float32Array(8);
      const products = new Int32Array(QK);
      let mins = 0;
      for (let b = 0; b < n / QK; b++) {
        const x = wo + b * size;
        const y = ao + b * partnerSize;
        if (withMin) mins = f32(mins + f32(readHalf(w, x + 2) * readHalf(a, y + 2)));
        for (let j = 0; j < QK; j++) products[j] = (spec.level(w, x, j) - (bias ?? 0)) * int8(a[y + partnerQs + j]);
        fmaBlockLanes(acc, f32(readHalf(w, x) * readHalf(a, y)), products);
      }
      return withMin ? f32(hsumFloat8(acc) + mins) : hsumFloat8(acc);
    },
    blockwiseDot: withMin
      ? undefined
      : (n, w, wo, a, ao) =>
          blockwiseOrder(
            n / QK,
            (b) => {
              let sum = 0;
              for (let j = 0; j < QK; j++) sum += (spec.level(w, wo + b * size, j) - bias) * int8(a[ao + b * partnerSize + partnerQs + j]);
              return sum;
            },
            (b) => f32(readHalf(w, wo + b * size) * readHalf(a, ao + b * partnerSize)),
          ),
  };
}

/** Element j of 16 packed bytes: low nibbles hold elements 0..15, high nibbles 16..31. */
export function nibble(bytes: Uint8Array, qsAt: number, j: number): number {
  return j < 16 ? bytes[qsAt + j] & 0xf : bytes[qsAt + j - 16] >> 4;
}
