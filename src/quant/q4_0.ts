import { GgmlType } from "../gguf/ggml-types.js";
import { signedAbsMax } from "./block-stats.js";
import { writeHalf } from "./half.js";
import { legacyFormat, nibble } from "./legacy.js";
import { f32, truncInt8 } from "./rounding.js";

/** block_q4_0: d (f16) | qs[16]: element j in the low nibble of qs[j], element j+16 in the high nibble. */
const QK = 32;
const SIZE = 18;

export const Q4_0 = legacyFormat({
  type: GgmlType.Q4_0,
  name: "Q4_0",
  typeSize: SIZE,
  bias: 8,
  level: (bytes, at, j) => nibble(bytes, at + 2, j),
  quantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK; b++) {
      const x = so + b * QK;
      const at = doff + b * SIZE;
      const d = f32(signedAbsMax(src, x, QK).max / -8);
      const id = d ? f32(1 / d) : 0;
      writeHalf(dst, at, d);
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(15, truncInt8(f32(f32(src[x + j] * id) + 8.5)));
        const q1 = Math.min(15, truncInt8(f32(f32(src[x + j + 16] * id) + 8.5)));
        dst[at + 2 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      }
    }
  },
});
