import { GgmlType } from "../gguf/ggml-types.js";
import { minMax } from "./block-stats.js";
import { writeHalf } from "./half.js";
import { legacyFormat } from "./legacy.js";
import { fiveBit, packFiveBit } from "./q5_0.js";
import { f32, truncInt8 } from "./rounding.js";

/** block_q5_1: d (f16) | m (f16) | qh (u32) | qs[16]; value = q·d + m. */
const QK = 32;
const SIZE = 24;

export const Q5_1 = legacyFormat({
  type: GgmlType.Q5_1,
  name: "Q5_1",
  typeSize: SIZE,
  level: (bytes, at, j) => fiveBit(bytes, at + 4, at + 8, j),
  quantizeRow(src, so, dst, doff, n) {
    const q = new Uint8Array(QK);
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      const { min, max } = minMax(src, x, QK);
      const d = f32(f32(max - min) / 31);
      const id = d ? f32(1 / d) : 0;
      writeHalf(dst, at, d);
      writeHalf(dst, at + 2, min);
      // ggml casts to uint8_t without clamping; the rounding keeps it within 0..31 for finite input.
      for (let j = 0; j < QK; j++) q[j] = truncInt8(f32(f32(f32(src[x + j] - min) * id) + 0.5)) & 0xff;
      packFiveBit(q, dst, at + 4, at + 8);
    }
  },
});
