import { GgmlType } from "../gguf/ggml-types.js";
import { Metadata } from "../gguf/metadata.js";
import { GgufValue } from "../gguf/types.js";
import { ModelTraits } from "../quantize/tensor-types.js";
import { pureQuant } from "../synth/mix.js";
import { ModelShape, PRESETS } from "../synth/presets.js";
import { planTensors } from "../synth/synth.js";

/** What `fit` needs of a model: its shape and its tensors, never their data. */
export interface ModelLayout {
  name: string;
  architecture: string;
  layers: number;
  embedding: number;
  heads: number;
  kvHeads: number;
  /** Per-head widths of K and V. */
  keyLength: number;
  valueLength: number;
  vocab: number;
  trainedContext: number;
  tensors: { name: string; dims: readonly number[]; type: GgmlType }[];
  traits: ModelTraits;
}

function traitsOf(architecture: string, layers: number, heads: number, kvHeads: number, experts: number, tensors: ModelLayout["tensors"], embedding: number): ModelTraits {
  return {
    architecture,
    layers,
    gqa: kvHeads > 0 ? heads / kvHeads : 1,
    experts,
    hasOutput: tensors.some((t) => t.name === "output.weight"),
    attentionV: tensors.filter((t) => t.name.includes("attn_v.weight") || t.name.includes("attn_qkv.weight")).length,
    is70B: architecture === "llama" && layers === 80 && embedding === 8192,
  };
}

/** A layout from a GGUF header (a local file's, or one read from the hub with a Range request). */
export function layoutFromHeader(name: string, metadata: Map<string, GgufValue>, tensors: ModelLayout["tensors"]): ModelLayout {
  const meta = new Metadata(metadata);
  const architecture = meta.string("general.architecture") ?? "unknown";
  const number = (key: string): number | undefined => meta.number(`${architecture}.${key}`);
  const embedding = number("embedding_length") ?? 0;
  const heads = number("attention.head_count") ?? 1;
  const kvHeads = number("attention.head_count_kv") ?? heads;
  const layers = number("block_count") ?? 0;
  const headSize = heads > 0 ? embedding / heads : 0;
  const vocab = tensors.find((t) => t.name === "token_embd.weight")?.dims[1] ?? meta.stringArray("tokenizer.ggml.tokens")?.length ?? 0;
  return {
    name,
    architecture,
    layers,
    embedding,
    heads,
    kvHeads,
    keyLength: number("attention.key_length") ?? headSize,
    valueLength: number("attention.value_length") ?? headSize,
    vocab,
    trainedContext: number("context_length") ?? 2048,
    tensors,
    traits: traitsOf(architecture, layers, heads, kvHeads, number("expert_count") ?? 0, tensors, embedding),
  };
}

/** Real published shapes, for "what could I run" questions without a file. */
const SHAPES: Record<string, { shape: ModelShape; vocab: number }> = {
  "llama2-7b": { shape: PRESETS["llama2-7b"], vocab: 32000 },
  "llama2-13b": { shape: { embedding: 5120, layers: 40, heads: 40, kvHeads: 40, feedForward: 13824, context: 4096, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false }, vocab: 32000 },
  "llama-30b": { shape: { embedding: 6656, layers: 60, heads: 52, kvHeads: 52, feedForward: 17920, context: 2048, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false }, vocab: 32000 },
  "llama2-70b": { shape: { embedding: 8192, layers: 80, heads: 64, kvHeads: 8, feedForward: 28672, context: 4096, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false }, vocab: 32000 },
  "llama3.1-8b": { shape: { embedding: 4096, layers: 32, heads: 32, kvHeads: 8, feedForward: 14336, context: 131072, ropeBase: 500000, tiedOutput: false, llama3RopeScaling: true }, vocab: 128256 },
  "tinyllama-1.1b": { shape: PRESETS["tinyllama-1.1b"], vocab: 32000 },
  "llama3.2-1b": { shape: PRESETS["llama3.2-1b"], vocab: 128256 },
};

export const SHAPE_NAMES = Object.keys(SHAPES);

export function layoutFromShapeName(name: string): ModelLayout | undefined {
  const known = SHAPES[name.toLowerCase()];
  if (!known) return undefined;
  const { shape, vocab } = known;
  const tensors = planTensors(shape, vocab, pureQuant(GgmlType.F16, "F16")).map((p) => ({ name: p.name, dims: p.dims, type: p.dims.length === 1 ? GgmlType.F32 : GgmlType.F16 }));
  const headSize = shape.embedding / shape.heads;
  return {
    name,
    architecture: "llama",
    layers: shape.layers,
    embedding: shape.embedding,
    heads: shape.heads,
    kvHeads: shape.kvHeads,
    keyLength: headSize,
    valueLength: headSize,
    vocab,
    trainedContext: shape.context,
    tensors,
    traits: traitsOf("llama", shape.layers, shape.heads, shape.kvHeads, 0, tensors, shape.embedding),
  };
}
