import { GgmlType } from "../gguf/ggml-types.js";
import { eightBitFormat } from "./q8_0.js";

/** block_q8_1: d (f16) | s = d·Σqs (f16) | qs[32] (int8). The activation partner of Q4_1 and Q5_1. */
export const Q8_1 = eightBitFormat(GgmlType.Q8_1, "Q8_1", true);
