import { GgmlType } from "../gguf/ggml-types.js";
import { quantFormat } from "../quant/index.js";
import { QuantizeError } from "./errors.js";
import { QuantTarget } from "./file-types.js";

/** What llama-quantize knows of the model when it picks a tensor's type. */
export interface ModelTraits {
  architecture: string;
  layers: number;
  /** Query heads per KV head. */
  gqa: number;
  experts: number;
  /** A separate output.weight (else the embedding doubles as the output and is treated as it). */
  hasOutput: boolean;
  /** attn_v (or fused attn_qkv) tensors in the file. */
  attentionV: number;
  /** Llama-2/3 70B: its attn_v is 8× smaller than attn_q and gets more bits. */
  is70B: boolean;
}

/** llama-quantize's use_more_bits, with its integer divisions: the first and last eighth, and every third between. */
export function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.trunc(layers / 8);
  return layer < eighth || layer >= Math.trunc((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/** Whether llama-quantize quantizes a tensor at all (2-D weights but norms, gates, embeddings of positions…). */
export function isQuantizable(name: string, dims: readonly number[]): boolean {
  if (!name.endsWith("weight") || dims.length < 2) return false;
  const kept = ["_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d.weight", "shortconv.conv.weight", "time_mix_", "attn_rel_b.weight"];
  return !kept.some((part) => name.includes(part)) && name !== "position_embd.weight" && name !== "token_types.weight";
}

/**
 * Picks tensor types as llama-quantize's llama_tensor_get_type does for the types tsllm writes. It
 * counts attn_v and ffn_down tensors as they come, so tensors must be visited in llama.cpp's order
 * (see llamaTensorOrder).
 */
export class TensorTypePicker {
  private attentionVSeen = 0;
  private ffnDownSeen = 0;
  /** Tensors whose rows did not fit the chosen type's blocks and fell back to another type. */
  fallbacks = 0;

  constructor(
    private readonly target: QuantTarget,
    private readonly model: ModelTraits,
  ) {}

  typeFor(name: string, cols: number): GgmlType {
    const chosen = this.rule(name, cols);
    return this.fitRow(chosen, cols, name);
  }

  private layerOf(name: string, counter: number): number {
    if (this.model.experts <= 1) return counter;
    const layer = /^blk\.(\d+)\./.exec(name);
    if (!layer) throw new QuantizeError(`${name}: cannot tell its layer`);
    return Number(layer[1]);
  }

  private rule(name: string, cols: number): GgmlType {
    const ftype = this.target.name;
    const base = this.target.baseType;
    const { architecture, gqa, experts, layers } = this.model;
    const falcon = architecture === "falcon";
    if (name === "output.weight" || (!this.model.hasOutput && name === "token_embd.weight")) {
      if (falcon || cols % quantFormat(base).blockSize !== 0) return GgmlType.Q8_0;
      return base === GgmlType.Q8_0 ? GgmlType.Q8_0 : GgmlType.Q6_K;
    }
    if (name === "token_embd.weight") return base;
    if (name.includes("attn_v.weight")) {
      const i = this.attentionVSeen++;
      let type = base;
      if (ftype === "Q2_K") type = gqa >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
      else if (ftype === "Q3_K_M") type = i < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
      else if (ftype === "Q3_K_L") type = GgmlType.Q5_K;
      else if ((ftype === "Q4_K_M" || ftype === "Q5_K_M") && useMoreBits(i, this.model.attentionV)) type = GgmlType.Q6_K;
      else if (ftype === "Q4_K_S" && i < 4) type = GgmlType.Q5_K;
      if (this.model.is70B && (type === GgmlType.Q3_K || type === GgmlType.Q4_K)) type = GgmlType.Q5_K;
      if (experts === 8) type = GgmlType.Q8_0;
      return type;
    }
    if (name.includes("attn_k.weight")) return experts === 8 ? GgmlType.Q8_0 : base;
    if (name.includes("ffn_down")) {
      const i = this.layerOf(name, this.ffnDownSeen++);
      if (ftype === "Q2_K") return GgmlType.Q3_K;
      if (ftype === "Q3_K_M") return i < Math.trunc(layers / 16) ? GgmlType.Q5_K : !falcon || useMoreBits(i, layers) ? GgmlType.Q4_K : GgmlType.Q3_K;
      if (ftype === "Q3_K_L") return falcon ? GgmlType.Q4_K : GgmlType.Q5_K;
      if (ftype === "Q4_K_M") {
        if (falcon) return i < Math.trunc(layers / 16) ? GgmlType.Q6_K : useMoreBits(i, layers) ? GgmlType.Q5_K : GgmlType.Q4_K;
        return useMoreBits(i, layers) ? GgmlType.Q6_K : base;
      }
      if (ftype === "Q5_K_M" && useMoreBits(i, layers)) return GgmlType.Q6_K;
      if (ftype === "Q4_K_S" && !falcon && i < Math.trunc(layers / 8)) return GgmlType.Q5_K;
      return base;
    }
    if (name.includes("attn_output.weight")) {
      if (falcon) return ftype === "Q3_K_L" ? GgmlType.Q4_K : base;
      if (experts === 8) return ["Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M"].includes(ftype) ? GgmlType.Q5_K : base;
      if (ftype === "Q2_K") return GgmlType.Q3_K;
      if (ftype === "Q3_K_M") return GgmlType.Q4_K;
      if (ftype === "Q3_K_L") return GgmlType.Q5_K;
      return base;
    }
    if (name.includes("attn_qkv.weight")) {
      if (ftype === "Q3_K_M" || ftype === "Q3_K_L") return GgmlType.Q4_K;
      if (ftype === "Q4_K_M") return GgmlType.Q5_K;
      if (ftype === "Q5_K_M") return GgmlType.Q6_K;
    }
    return base;
  }

  /** llama-quantize's fallback when a row is not a whole number of the type's blocks. */
  private fitRow(type: GgmlType, cols: number, name: string): GgmlType {
    if (cols % quantFormat(type).blockSize === 0) return type;
    const fallback: Partial<Record<GgmlType, GgmlType>> = {
      [GgmlType.Q4_K]: GgmlType.Q5_0,
      [GgmlType.Q5_K]: GgmlType.Q5_1,
      [GgmlType.Q6_K]: GgmlType.Q8_0,
    };
    const next = fallback[type];
    if (next === undefined) throw new QuantizeError(`${name}: rows of ${cols} values do not fit ${quantFormat(type).name} blocks of ${quantFormat(type).blockSize}, and llama-quantize has no fallback for it that tsllm writes`);
    this.fallbacks++;
    return cols % quantFormat(next).blockSize === 0 ? next : GgmlType.F16;
  }
}

/** llama.cpp's weight order: tensors outside the blocks first, then block by block, each by name. */
export function llamaTensorOrder(a: string, b: string): number {
  const layer = (name: string): number => Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
  return layer(a) - layer(b) || (a < b ? -1 : a > b ? 1 : 0);
}
