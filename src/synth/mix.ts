import { GgmlType } from "../gguf/ggml-types.js";

/**
 * What a synthetic model is quantized to: one type for every matrix, or a llama-quantize mix such as
 * Q4_K_M, whose tensor-by-tensor choices are reproduced so that speed figures compare like with like.
 */
export interface QuantPlan {
  name: string;
  /** llama_ftype, written as general.file_type. */
  fileType: number;
  typeOf(tensor: string, layer: number | undefined, layers: number, hasOutput: boolean): GgmlType;
}

const PURE_FILE_TYPES: Partial<Record<GgmlType, number>> = {
  [GgmlType.F32]: 0,
  [GgmlType.F16]: 1,
  [GgmlType.Q4_0]: 2,
  [GgmlType.Q4_1]: 3,
  [GgmlType.Q8_0]: 7,
  [GgmlType.Q5_0]: 8,
  [GgmlType.Q5_1]: 9,
  [GgmlType.Q2_K]: 10,
  [GgmlType.Q3_K]: 11,
  [GgmlType.Q4_K]: 14,
  [GgmlType.Q5_K]: 16,
  [GgmlType.Q6_K]: 18,
  [GgmlType.BF16]: 32,
};

export function pureQuant(type: GgmlType, name: string): QuantPlan {
  return { name, fileType: PURE_FILE_TYPES[type] ?? 0, typeOf: () => type };
}

/** llama-quantize's use_more_bits: the first and last eighth of the layers, and every third between. */
function useMoreBits(layer: number, layers: number): boolean {
  return layer < layers / 8 || layer >= (7 * layers) / 8 || (layer - Math.floor(layers / 8)) % 3 === 2;
}

/** Q4_K_M as llama-quantize makes it for llama: Q6_K output (or tied embedding) and, on use_more_bits layers, attn_v and ffn_down. */
export const Q4_K_M: QuantPlan = {
  name: "Q4_K_M",
  fileType: 15,
  typeOf(tensor, layer, layers, hasOutput) {
    if (tensor === "output.weight" || (!hasOutput && tensor === "token_embd.weight")) return GgmlType.Q6_K;
    const moreBits = layer !== undefined && useMoreBits(layer, layers);
    if ((tensor.endsWith("attn_v.weight") || tensor.endsWith("ffn_down.weight")) && moreBits) return GgmlType.Q6_K;
    return GgmlType.Q4_K;
  },
};

export const QUANT_MIXES: Record<string, QuantPlan> = { Q4_K_M };

/** A mix by name (Q4_K_M), or a pure plan for any type name that `isWritable` accepts. */
export function quantPlanNamed(name: string, typeFromName: (name: string) => GgmlType | undefined): QuantPlan | undefined {
  const mix = QUANT_MIXES[name.toUpperCase()];
  if (mix) return mix;
  const type = typeFromName(name);
  return type === undefined ? undefined : pureQuant(type, name.toUpperCase());
}
