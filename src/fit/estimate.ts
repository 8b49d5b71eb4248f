import { GgmlType } from "../gguf/ggml-types.js";
import { quantFormat, rowBytes } from "../quant/index.js";
import { isQuantizedType, QuantTarget } from "../quantize/file-types.js";
import { isQuantizable, llamaTensorOrder, TensorTypePicker } from "../quantize/tensor-types.js";
import { ModelLayout } from "./layout.js";

export interface WeightBudget {
  /** Bytes of every tensor. */
  total: number;
  /** Bytes read per generated token, by type and row length: every matrix but the embedding table (one row is read). */
  streamed: StreamedBytes[];
}

export interface StreamedBytes {
  type: GgmlType;
  cols: number;
  bytes: number;
}

function tensorBytes(type: GgmlType, dims: readonly number[]): number {
  return rowBytes(quantFormat(type), dims[0]) * dims.slice(1).reduce((a, b) => a * b, 1);
}

/** The weights as the file holds them (`target` undefined) or as llama-quantize would make them. */
export function weightBudget(layout: ModelLayout, target?: QuantTarget): WeightBudget {
  const picker = target ? new TensorTypePicker(target, layout.traits) : undefined;
  const streamed: StreamedBytes[] = [];
  let total = 0;
  const tiedOutput = !layout.tensors.some((t) => t.name === "output.weight");
  for (const tensor of [...layout.tensors].sort((a, b) => llamaTensorOrder(a.name, b.name))) {
    let type = tensor.type;
    if (target && isQuantizable(tensor.name, tensor.dims)) {
      type = isQuantizedType(target.baseType) && picker ? picker.typeFor(tensor.name, tensor.dims[0]) : target.baseType;
    }
    const bytes = tensorBytes(type, tensor.dims);
    total += bytes;
    if (tensor.dims.length >= 2 && (tensor.name !== "token_embd.weight" || tiedOutput)) {
      const same = streamed.find((s) => s.type === type && s.cols === tensor.dims[0]);
      if (same) same.bytes += bytes;
      else streamed.push({ type, cols: tensor.dims[0], bytes });
    }
  }
  return { total, streamed };
}

/** K and V in F16 for every layer, as llama.cpp's default cache holds them. */
export function kvCacheBytes(layout: ModelLayout, context: number): number {
  return layout.layers * layout.kvHeads * (layout.keyLength + layout.valueLength) * context * 2;
}

/**
 * llama.cpp's compute buffer for a 512-token micro-batch, to first order: the logits, the widest
 * activations, and attention's score matrix (no flash attention).
 */
export function computeBytes(layout: ModelLayout, context: number): number {
  const ubatch = 512;
  const ffn = layout.tensors.find((t) => t.name.endsWith("ffn_up.weight"))?.dims[1] ?? 4 * layout.embedding;
  return ubatch * 4 * (layout.vocab + 4 * layout.embedding + 2 * ffn) + layout.heads * context * ubatch * 4;
}

export interface Hardware {
  /** GPU memory in bytes; CPU only when absent. */
  vram?: number;
  ram: number;
  /** GPU memory bandwidth, bytes/s. */
  gpuBandwidth?: number;
  /** The CPU's effective rate over weights of a type and row length (bytes/s), measured or assumed. */
  cpuBandwidth: (type: GgmlType, cols: number) => number;
  /** CPU time per layer besides streaming weights (seconds), when measured. */
  layerSeconds?: number;
}

export type Placement = "gpu" | "edge" | "offload" | "cpu" | "no";

export interface FitVerdict {
  total: number;
  placement: Placement;
  /** Expected decode speed from memory bandwidth, tokens/s (0 when it does not fit). */
  tokensPerSecond: number;
}

/** Up to this share of the model in system RAM, the GPU still does most of the work: "edge". */
export const EDGE_SHARE = 1 / 3;

/** What the system keeps for itself: a tenth of the RAM, at least 1 GiB. */
export function usableRam(ram: number): number {
  return ram - Math.max(2 ** 30, ram / 10);
}

/** Where a model would run and how fast decoding would go, reading each weight once per token. */
export function fit(weights: WeightBudget, layout: ModelLayout, context: number, hardware: Hardware): FitVerdict {
  const kv = kvCacheBytes(layout, context);
  const total = weights.total + kv + computeBytes(layout, context);
  const ram = usableRam(hardware.ram);
  const cpuSeconds = (share: number): number =>
    weights.streamed.reduce((s, { type, cols, bytes }) => s + (bytes * share) / hardware.cpuBandwidth(type, cols), 0) + share * layout.layers * (hardware.layerSeconds ?? 0);
  const streamedTotal = weights.streamed.reduce((a, s) => a + s.bytes, 0);
  const kvRead = kv / 2; // on average half the context is filled while generating
  if (hardware.vram === undefined || hardware.gpuBandwidth === undefined) {
    if (total > ram) return { total, placement: "no", tokensPerSecond: 0 };
    return { total, placement: "cpu", tokensPerSecond: 1 / (cpuSeconds(1) + kvRead / hardware.cpuBandwidth(GgmlType.F16, layout.keyLength)) };
  }
  if (total > hardware.vram + ram) return { total, placement: "no", tokensPerSecond: 0 };
  const offloaded = Math.min(streamedTotal, Math.max(0, total - hardware.vram));
  const cpuShare = streamedTotal > 0 ? offloaded / streamedTotal : 0;
  const seconds = (streamedTotal - offloaded + kvRead) / hardware.gpuBandwidth + cpuSeconds(cpuShare);
  const placement: Placement = offloaded === 0 ? "gpu" : offloaded <= total * EDGE_SHARE ? "edge" : "offload";
  return { total, placement, tokensPerSecond: 1 / seconds };
}
