import { GgmlType, ggmlTypeName } from "../gguf/ggml-types.js";
import { BF16 } from "./bf16.js";
import { F16 } from "./f16.js";
import { F32 } from "./f32.js";
import { QuantFormat } from "./format.js";
import { Q2_K } from "./q2_k.js";
import { Q3_K } from "./q3_k.js";
import { Q4_0 } from "./q4_0.js";
import { Q4_1 } from "./q4_1.js";
import { Q4_K } from "./q4_k.js";
import { Q5_0 } from "./q5_0.js";
import { Q5_1 } from "./q5_1.js";
import { Q5_K } from "./q5_k.js";
import { Q6_K } from "./q6_k.js";
import { Q8_0 } from "./q8_0.js";
import { Q8_1 } from "./q8_1.js";
import { Q8_K } from "./q8_k.js";

export type { QuantFormat } from "./format.js";
export { rowBytes } from "./format.js";
export * from "./half.js";

const FORMATS: ReadonlyMap<GgmlType, QuantFormat> = new Map(
  [F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K].map((f) => [f.type, f]),
);

export function isSupportedType(type: number): boolean {
  return FORMATS.has(type as GgmlType);
}

export function quantFormat(type: number): QuantFormat {
  const format = FORMATS.get(type as GgmlType);
  if (!format) throw new Error(`tensor type ${ggmlTypeName(type)} is not supported`);
  return format;
}
