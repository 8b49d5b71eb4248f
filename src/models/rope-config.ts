import { Backend, RopeOrdering, RopeParams } from "../backend/backend.js";
import { ModelError } from "./model.js";
import { HyperParams, WeightSource } from "./weights.js";

/** RoPE settings from `<arch>.rope.*` and the optional `rope_freqs.weight` factors (Llama-3.1 scaling). */
export function readRope(hparams: HyperParams, weights: WeightSource, backend: Backend, headDim: number, ordering: RopeOrdering): RopeParams {
  const dims = hparams.count("rope.dimension_count", headDim, headDim);
  if (dims % 2 !== 0) throw new ModelError(`${hparams.arch}.rope.dimension_count must be even, got ${dims}`);
  const freqBase = hparams.number("rope.freq_base") ?? 10000;
  const scalingType = hparams.string("rope.scaling.type") ?? "none";
  let freqScale = 1;
  if (scalingType === "linear") {
    const factor = hparams.number("rope.scaling.factor") ?? 1;
    freqScale = factor > 0 ? 1 / factor : 1;
  } else if (scalingType !== "none") {
    throw new ModelError(`${hparams.arch}.rope.scaling.type '${scalingType}' is not supported yet`);
  } else {
    const legacyScale = hparams.number("rope.scale_linear");
    if (legacyScale && legacyScale > 0) freqScale = 1 / legacyScale;
  }
  const factorsWeight = weights.optional("rope_freqs.weight", [dims / 2]);
  const freqFactors = factorsWeight ? backend.toFloat(factorsWeight) : undefined;
  const attnFactor = hparams.number("rope.scaling.attn_factor");
  return { ordering, dims, freqBase, freqScale: Math.fround(freqScale), freqFactors, attnFactor: attnFactor && attnFactor !== 1 ? Math.fround(attnFactor) : undefined };
}

/**
 * Phi-3's LongRoPE: two sets of frequency factors, the short ones for contexts up to the original
 * length (rope.scaling.original_context_length) and the long ones beyond, as llama.cpp picks them by
 * the context of a sequence. Undefined when the file has no such factors.
 */
export interface LongRope {
  short: RopeParams;
  long: RopeParams;
  originalContext: number;
}

export function readLongRope(hparams: HyperParams, weights: WeightSource, backend: Backend, base: RopeParams): LongRope | undefined {
  const short = weights.optional("rope_factors_short.weight", [base.dims / 2]);
  const long = weights.optional("rope_factors_long.weight", [base.dims / 2]);
  if (!short || !long) return undefined;
  const originalContext = hparams.count("rope.scaling.original_context_length", 1 << 24, hparams.count("context_length", 1 << 24, 2048));
  return { short: { ...base, freqFactors: backend.toFloat(short) }, long: { ...base, freqFactors: backend.toFloat(long) }, originalContext };
}
