import { GgmlType } from "../gguf/ggml-types.js";
import { minMax } from "./block-stats.js";
import { writeHalf } from "./half.js";
import { legacyFormat, nibble } from "./legacy.js";
import { f32, truncInt8 } from "./rounding.js";

/** block_q4_1: d (f16) | m (f16) | qs[16]; value = q·d + m. */
const QK = 32;
const SIZE = 20;

export const Q4_1 = legacyFormat({
  type: GgmlType.Q4_1,
  name: "Q4_1",
  typeSize: SIZE,
  level: (bytes, at, j) => nibble(bytes, at + 4, j),
  quantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      const { min, max } = minMax(src, x, QK);
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
});
