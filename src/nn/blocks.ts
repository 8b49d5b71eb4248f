import { AttentionSegment, AttentionShape, Backend, DecoderLayerWeights, GateActivation, NormWeights, RopeParams } from "../backend/backend.js";
import { Weight } from "../tensor/weight.js";

/** y = x·Wᵀ for [T, in] → [T, out]. */
export class Linear {
  constructor(
    private readonly backend: Backend,
    readonly weight: Weight,
  ) {}

  get outFeatures(): number {
    return this.weight.rows;
  }

  forward(x: Float32Array, tokens: number): Float32Array {
    return this.backend.matmul(this.weight, x, tokens);
  }
}

export class RmsNorm {
  readonly weights: NormWeights;

  constructor(
    private readonly backend: Backend,
    weight: Weight,
    eps: number,
  ) {
    this.weights = { gain: backend.toFloat(weight), eps };
  }

  forward(x: Float32Array): Float32Array {
    const { gain, eps } = this.weights;
    return this.backend.rmsNorm(x, gain, eps, gain.length);
  }
}

export interface AttentionWeights {
  /** Q, K and V as three matrices, or one whose rows are Q's, then K's, then V's (Phi-3's attn_qkv). */
  projection: { q: Weight; k: Weight; v: Weight } | { fused: Weight };
  output: Weight;
  /** Biases of Q, K and V (Qwen2), added after the projections as ggml_add does, in f32. */
  bias?: { q: Float32Array; k: Float32Array; v: Float32Array };
  /** RMSNorm of each head of Q and K before RoPE (Qwen3): the gains, one head wide, and epsilon. */
  headNorm?: { q: Float32Array; k: Float32Array; eps: number };
  /** Q is multiplied by this after RoPE (Gemma's query_pre_attn_scalar; the scores are then not scaled). */
  queryScale?: number;
}

/** [T, Σ widths] split into one [T, width] array per width, left to right. */
function splitColumns(x: Float32Array, tokens: number, widths: readonly number[]): Float32Array[] {
  const total = widths.reduce((a, b) => a + b, 0);
  let offset = 0;
  return widths.map((width) => {
    const part = new Float32Array(tokens * width);
    for (let t = 0; t < tokens; t++) part.set(x.subarray(t * total + offset, t * total + offset + width), t * width);
    offset += width;
    return part;
  });
}

/** Adds a bias to every row of [rows, bias.length] in place. */
function addBias(x: Float32Array, bias: Float32Array): void {
  for (let at = 0; at < x.length; at += bias.length) for (let i = 0; i < bias.length; i++) x[at + i] += bias[i];
}

/** Multi-head self-attention with grouped KV heads, RoPE and a KV cache. */
export class SelfAttention {
  /** Q, K and V (or the one fused matrix), multiplied with one input together. */
  private readonly qkv: readonly Weight[];
  private readonly output: Linear;
  private readonly bias?: AttentionWeights["bias"];
  private readonly headNorm?: AttentionWeights["headNorm"];
  private readonly queryScale?: number;

  constructor(
    private readonly backend: Backend,
    weights: AttentionWeights,
    readonly shape: AttentionShape,
    readonly rope: RopeParams,
  ) {
    const projection = weights.projection;
    this.qkv = "fused" in projection ? [projection.fused] : [projection.q, projection.k, projection.v];
    this.output = new Linear(backend, weights.output);
    this.bias = weights.bias;
    this.headNorm = weights.headNorm;
    this.queryScale = weights.queryScale;
  }

  /** Its part of a layer for Backend.decoderLayers: where Q, K and V are three matrices. */
  layerWeights(): Pick<DecoderLayerWeights, "q" | "k" | "v" | "bias" | "headNorm" | "queryScale" | "output"> | undefined {
    if (this.qkv.length !== 3) return undefined;
    const [q, k, v] = this.qkv;
    return { q, k, v, bias: this.bias, headNorm: this.headNorm, queryScale: this.queryScale, output: this.output.weight };
  }

  /**
   * Attention for a batch that may hold several sequences: the projections run over all tokens at
   * once, each segment then stores its keys and values in its own cache and attends over it alone.
   */
  forward(x: Float32Array, tokens: number, positions: ArrayLike<number>, segments: readonly AttentionSegment[], rope: RopeParams = this.rope): Float32Array {
    const { heads, kvHeads, headDim } = this.shape;
    const qWidth = heads * headDim;
    const kvWidth = kvHeads * headDim;
    // q [T, heads·headDim], k and v [T, kvHeads·headDim]
    const projected = this.backend.matmuls(this.qkv, x, tokens);
    let [q, k, v] = projected.length === 3 ? projected : splitColumns(projected[0], tokens, [qWidth, kvWidth, kvWidth]);
    if (projected.length !== 3) this.backend.recycle?.(...projected);
    if (this.bias) {
      addBias(q, this.bias.q);
      addBias(k, this.bias.k);
      addBias(v, this.bias.v);
    }
    if (this.headNorm) {
      // each head's row of headDim is normalised on its own
      const [rawQ, rawK] = [q, k];
      q = this.backend.rmsNorm(rawQ, this.headNorm.q, this.headNorm.eps, headDim);
      k = this.backend.rmsNorm(rawK, this.headNorm.k, this.headNorm.eps, headDim);
      this.backend.recycle?.(rawQ, rawK);
    }
    // Gemma's query scale comes between RoPE and attention, so only the others can take the three at once
    const attended =
      (this.queryScale === undefined ? this.backend.ropeStoreAttend?.(q, k, v, segments, positions, this.shape, rope) : undefined) ??
      this.rotateStoreAttend(q, k, v, positions, segments, rope);
    this.backend.recycle?.(q, k, v);
    const out = this.output.forward(attended, tokens); // [T, nEmbd]
    this.backend.recycle?.(attended);
    return out;
  }

  /** RoPE on q and k (in place), the query scale, each segment's K and V into its cache, and attention over it. */
  private rotateStoreAttend(q: Float32Array, k: Float32Array, v: Float32Array, positions: ArrayLike<number>, segments: readonly AttentionSegment[], rope: RopeParams): Float32Array {
    const { heads, kvHeads, headDim } = this.shape;
    const kvWidth = kvHeads * headDim;
    this.backend.rope(q, heads, headDim, positions, rope);
    this.backend.rope(k, kvHeads, headDim, positions, rope);
    if (this.queryScale !== undefined) {
      const scale = this.queryScale;
      for (let i = 0; i < q.length; i++) q[i] = Math.fround(q[i] * scale);
    }
    if (segments.length === 1) {
      this.backend.storeKv(segments[0].kv, k, v, positions, kvWidth);
      return this.backend.attention(q, segments[0].kv, positions, this.shape); // [T, heads·headDim]
    }
    for (const { start, length, kv } of segments) {
      const at = Array.prototype.slice.call(positions, start, start + length) as number[];
      this.backend.storeKv(kv, k.subarray(start * kvWidth, (start + length) * kvWidth), v.subarray(start * kvWidth, (start + length) * kvWidth), at, kvWidth);
    }
    return this.backend.attendSequences(q, segments, positions, this.shape);
  }
}

/** A position-wise feed-forward layer: [T, nEmbd] → [T, nEmbd]. */
export interface FeedForward {
  forward(x: Float32Array, tokens: number): Float32Array;
}

/** Gate and up as two matrices, or one whose rows are the gate's, then up's (Phi-3's ffn_up). */
export type FeedForwardWeights = { gate: Weight; up: Weight; down: Weight } | { gateUp: Weight; down: Weight };

/** down(act(gate(x)) · up(x)) */
export class GatedFeedForward implements FeedForward {
  /** Gate and up, multiplied with one input together. */
  private readonly gateUp: readonly Weight[];
  private readonly down: Linear;

  constructor(
    private readonly backend: Backend,
    weights: FeedForwardWeights,
    private readonly activation: GateActivation = "silu",
  ) {
    this.gateUp = "gateUp" in weights ? [weights.gateUp] : [weights.gate, weights.up];
    this.down = new Linear(backend, weights.down);
  }

  /** Its part of a layer for Backend.decoderLayers: where gate and up are two matrices. */
  layerWeights(): Pick<DecoderLayerWeights, "gate" | "up" | "down" | "activation"> | undefined {
    if (this.gateUp.length !== 2) return undefined;
    const [gate, up] = this.gateUp;
    return { gate, up, down: this.down.weight, activation: this.activation };
  }

  forward(x: Float32Array, tokens: number): Float32Array {
    if (this.gateUp.length === 2) {
      const fused = this.backend.gatedFeedForward?.(this.gateUp[0], this.gateUp[1], this.down.weight, this.activation, x, tokens);
      if (fused) return fused;
    }
    const projected = this.backend.matmuls(this.gateUp, x, tokens);
    const width = this.down.weight.cols;
    const [gate, up] = projected.length === 2 ? projected : splitColumns(projected[0], tokens, [width, width]);
    const hidden = this.activation === "gelu" ? this.backend.geglu(gate, up) : this.backend.swiglu(gate, up); // [T, nFf]
    this.backend.recycle?.(gate, up, ...(projected.length === 2 ? [] : projected));
    const out = this.down.forward(hidden, tokens); // [T, nEmbd]
    this.backend.recycle?.(hidden);
    return out;
  }
}
