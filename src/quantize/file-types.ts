import { GgmlType } from "../gguf/ggml-types.js";

/** A llama-quantize target: its llama_ftype number and the type most matrices get. */
export interface QuantTarget {
  name: string;
  fileType: number;
  baseType: GgmlType;
}

const TARGETS: QuantTarget[] = [
  { name: "F32", fileType: 0, baseType: GgmlType.F32 },
  { name: "F16", fileType: 1, baseType: GgmlType.F16 },
  { name: "BF16", fileType: 32, baseType: GgmlType.BF16 },
  { name: "Q4_0", fileType: 2, baseType: GgmlType.Q4_0 },
  { name: "Q4_1", fileType: 3, baseType: GgmlType.Q4_1 },
  { name: "Q5_0", fileType: 8, baseType: GgmlType.Q5_0 },
  { name: "Q5_1", fileType: 9, baseType: GgmlType.Q5_1 },
  { name: "Q8_0", fileType: 7, baseType: GgmlType.Q8_0 },
  { name: "Q2_K", fileType: 10, baseType: GgmlType.Q2_K },
  { name: "Q3_K_S", fileType: 11, baseType: GgmlType.Q3_K },
  { name: "Q3_K_M", fileType: 12, baseType: GgmlType.Q3_K },
  { name: "Q3_K_L", fileType: 13, baseType: GgmlType.Q3_K },
  { name: "Q4_K_S", fileType: 14, baseType: GgmlType.Q4_K },
  { name: "Q4_K_M", fileType: 15, baseType: GgmlType.Q4_K },
  { name: "Q5_K_S", fileType: 16, baseType: GgmlType.Q5_K },
  { name: "Q5_K_M", fileType: 17, baseType: GgmlType.Q5_K },
  { name: "Q6_K", fileType: 18, baseType: GgmlType.Q6_K },
];

/** llama-quantize's names, with its short aliases (Q3_K is Q3_K_M, Q4_K Q4_K_M, Q5_K Q5_K_M). */
const ALIASES: Record<string, string> = { Q3_K: "Q3_K_M", Q4_K: "Q4_K_M", Q5_K: "Q5_K_M" };

export function quantTarget(name: string): QuantTarget | undefined {
  const upper = name.toUpperCase();
  return TARGETS.find((t) => t.name === (ALIASES[upper] ?? upper));
}

export const QUANT_TARGET_NAMES = TARGETS.map((t) => t.name);

export function isQuantizedType(type: GgmlType): boolean {
  return type !== GgmlType.F32 && type !== GgmlType.F16 && type !== GgmlType.BF16;
}
