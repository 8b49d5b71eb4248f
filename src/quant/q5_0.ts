import { GgmlType } from "../gguf/ggml-types.js";
import { signedAbsMax } from "./block-stats.js";
import { writeHalf } from "./half.js";
import { legacyFormat, nibble } from "./legacy.js";
import { f32, truncInt8 } from "./rounding.js";

/** block_q5_0: d (f16) | qh (u32, fifth bits) | qs[16] (low nibbles, as Q4_0). */
const QK = 32;
const SIZE = 22;

/** The 5-bit value j (0..31) of a block whose qh starts at `qhAt` and qs at `qsAt`. */
export function fiveBit(bytes: Uint8Array, qhAt: number, qsAt: number, j: number): number {
  const high = (bytes[qhAt + (j >> 3)] >> (j & 7)) & 1;
  return nibble(bytes, qsAt, j) | (high << 4);
}

/** Packs 32 five-bit values into qh/qs at `qhAt`/`qsAt`. */
export function packFiveBit(values: ArrayLike<number>, bytes: Uint8Array, qhAt: number, qsAt: number): void {
  bytes.fill(0, qhAt, qhAt + 4);
  for (let j = 0; j < 16; j++) {
    bytes[qsAt + j] = (values[j] & 0xf) | ((values[j + 16] & 0xf) << 4);
  }
  for (let j = 0; j < 32; j++) bytes[qhAt + (j >> 3)] |= ((values[j] >> 4) & 1) << (j & 7);
}

export const Q5_0 = legacyFormat({
  type: GgmlType.Q5_0,
  name: "Q5_0",
  typeSize: SIZE,
  bias: 16,
  level: (bytes, at, j) => fiveBit(bytes, at + 2, at + 6, j),
  quantizeRow(src, so, dst, doff, n) {
    const q = new Uint8Array(QK);
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      const d = f32(signedAbsMax(src, x, QK).max / -16);
      const id = d ? f32(1 / d) : 0;
      writeHalf(dst, at, d);
      for (let j = 0; j < QK; j++) q[j] = Math.min(31, truncInt8(f32(f32(src[x + j] * id) + 16.5)));
      packFiveBit(q, dst, at + 2, at + 6);
    }
  },
});
