import { Weight } from "../tensor/weight.js";

/** How RoPE rotates a head: adjacent pairs (llama) or halves (NeoX). */
export type RopeOrdering = "normal" | "neox";

export interface RopeParams {
  ordering: RopeOrdering;
  /** Rotated dimensions per head (rope.dimension_count), ≤ head size. */
  dims: number;
  freqBase: number;
  freqScale: number;
  /** Per-pair divisors of the frequency (rope_freqs.weight), e.g. Llama-3.1 scaling, or Phi-3's LongRoPE factors. */
  freqFactors?: Float32Array;
  /** cos and sin are multiplied by this (rope.scaling.attn_factor, ggml's mscale); 1 when absent. */
  attnFactor?: number;
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
  /** Sliding window: a query at position p sees keys p − window + 1 … p only (Gemma's local layers). */
  window?: number;
  /** Soft-capping of the scores before the softmax: cap·tanh(s / cap) (Gemma 2). */
  softcap?: number;
}

/** The gate's activation in a gated feed-forward layer: SiLU (SwiGLU, Llama) or GELU (GeGLU, Gemma). */
export type GateActivation = "silu" | "gelu";

/** An RMSNorm's gain (one row wide) and epsilon. */
export interface NormWeights {
  gain: Float32Array;
  eps: number;
}

/**
 * A pre-norm decoder layer (Llama, Qwen2/3, Mistral, Gemma 2/3), for Backend.decoderLayers:
 * h = x + output·attention(rope(norm(x)·Q + bias), …), then h + down(act(norm(h)·gate) · norm(h)·up),
 * with Gemma's norms of both outputs before their residual adds.
 */
export interface DecoderLayerWeights {
  attentionNorm: NormWeights;
  q: Weight;
  k: Weight;
  v: Weight;
  /** Added to Q, K and V after the products (Qwen2). */
  bias?: { q: Float32Array; k: Float32Array; v: Float32Array };
  /** RMSNorm of each head of Q and K before RoPE (Qwen3), one head wide. */
  headNorm?: { q: Float32Array; k: Float32Array; eps: number };
  /** Q is multiplied by this after RoPE (Gemma's query_pre_attn_scalar; the scores are then not scaled). */
  queryScale?: number;
  output: Weight;
  /** Norms of the attention's and the feed-forward layer's outputs before each residual add (Gemma). */
  postNorms?: { attention: NormWeights; ffn: NormWeights };
  ffnNorm: NormWeights;
  gate: Weight;
  up: Weight;
  down: Weight;
  activation: GateActivation;
}

/** A decoder layer as one pass runs it: its weights, each sequence's segment of its cache, and its RoPE. */
export interface DecoderLayerCall {
  weights: DecoderLayerWeights;
  segments: readonly AttentionSegment[];
  shape: AttentionShape;
  rope: RopeParams;
}

/** Zeroed F16 arrays for KV caches, and their return. */
export interface HalfStorage {
  allocate(length: number): Uint16Array;
  release(array: Uint16Array): void;
}

/** How KV cache rows are stored: F16 (llama.cpp's default) or Q8_0 blocks (llama.cpp's -ctk/-ctv q8_0). */
export type KvType = "f16" | "q8_0";

/**
 * KV storage of one layer: [rows, kvHeads·headDim] as F16 (llama.cpp's default cache), or each row as
 * Q8_0 blocks when `type` says so (kv-format.ts has the row layout).
 */
export interface LayerKv {
  keys: Uint16Array;
  values: Uint16Array;
  type?: KvType;
  /**
   * The row that holds position p (a paged cache's block table, spelled out per position); position p
   * is row p when absent.
   */
  rows?: Int32Array;
}

/** The tokens of one sequence within a batch: rows start … start + length − 1, and that sequence's cache layer. */
export interface AttentionSegment {
  start: number;
  length: number;
  kv: LayerKv;
}

/**
 * The operations a forward pass needs. Activations are row-major Float32Array [tokens, width].
 * Implementations reproduce ggml's CPU arithmetic: activations are converted to the weight's partner
 * type before each matrix product.
 */
export interface Backend {
  readonly name: string;
  /** Threads the backend computes on (1 when absent). */
  readonly threads?: number;
  /** Stops worker threads; the backend is unusable afterwards. */
  dispose?(): void;
  /** Storage for KV caches that this backend's kernels can read; plain arrays when absent. */
  readonly halfStorage?: HalfStorage;
  /** [T, w.rows] = [T, w.cols] · wᵀ */
  matmul(w: Weight, x: Float32Array, tokens: number): Float32Array;
  /** matmul of several weights with the same input (Q, K and V; gate and up): the input is prepared once. */
  matmuls(ws: readonly Weight[], x: Float32Array, tokens: number): Float32Array[];
  /** Rows of an embedding matrix, dequantized: [ids.length, w.cols]. */
  getRows(w: Weight, ids: ArrayLike<number>): Float32Array;
  /** A whole weight as f32 (norm vectors, rope factors). */
  toFloat(w: Weight): Float32Array;
  /** Row-wise RMSNorm times `gain`. */
  rmsNorm(x: Float32Array, gain: Float32Array, eps: number, width: number): Float32Array;
  /** Rotates [T, heads·headDim] in place for the given positions. */
  rope(x: Float32Array, heads: number, headDim: number, positions: ArrayLike<number>, params: RopeParams): void;
  /** Writes rows of K and V for `positions` into the layer's cache, rounded to its type. */
  storeKv(kv: LayerKv, k: Float32Array, v: Float32Array, positions: ArrayLike<number>, kvWidth: number): void;
  /** Causal attention of q [T, heads·headDim] over cache positions 0..positions[t] (the window's part of them). */
  attention(q: Float32Array, kv: LayerKv, positions: ArrayLike<number>, shape: AttentionShape): Float32Array;
  /**
   * attention for a batch of sequences at once, each segment's rows of q over its own cache: bit for bit
   * what attention gives each segment alone.
   */
  attendSequences(q: Float32Array, segments: readonly AttentionSegment[], positions: ArrayLike<number>, shape: AttentionShape): Float32Array;
  /**
   * rope on q and k, storeKv of k and v into each segment's cache, then attendSequences, for backends that
   * do the three together; undefined where they have no such path, and the caller composes them. The
   * result and the cache rows are the composition's, bit for bit; q and k may be left rotated or not.
   */
  ropeStoreAttend?(q: Float32Array, k: Float32Array, v: Float32Array, segments: readonly AttentionSegment[], positions: ArrayLike<number>, shape: AttentionShape, rope: RopeParams): Float32Array | undefined;
  /** silu(gate) · up, element-wise. */
  swiglu(gate: Float32Array, up: Float32Array): Float32Array;
  /** gelu(gate) · up, element-wise (GeGLU, Gemma). */
  geglu(gate: Float32Array, up: Float32Array): Float32Array;
  /** x = cap·tanh(x / cap) in place (Gemma 2's logit soft-capping). */
  softcapInPlace(x: Float32Array, cap: number): void;
  /** a += b, element-wise. */
  addInPlace(a: Float32Array, b: Float32Array): void;
  /**
   * down(act(gate·x) · up·x), [T, down.rows], for backends that keep the wide intermediates to themselves;
   * undefined where they have no such path for these weights, and the caller composes the operations.
   * The result is the composition's, bit for bit.
   */
  gatedFeedForward?(gate: Weight, up: Weight, down: Weight, activation: GateActivation, x: Float32Array, tokens: number): Float32Array | undefined;
  /**
   * Decoder layers one after another over [T, nEmbd] (x is left as it was), each storing K and V in its
   * segments' caches, for backends that run them as one piece; undefined where they have no such path for
   * these layers, and the caller composes the operations. The result and the cache rows are the
   * composition's, bit for bit.
   */
  decoderLayers?(layers: readonly DecoderLayerCall[], x: Float32Array, positions: ArrayLike<number>): Float32Array | undefined;
  /**
   * Results the caller will not read again, which the backend may hand out as later results. Optional to
   * implement and to call; an array passed here must have no other reader.
   */
  recycle?(...arrays: Float32Array[]): void;
  /**
   * A forward pass is over: recycled results kept for its later steps may be let go, so that a prompt
   * batch's megabytes of them do not stay resident between passes. Optional to implement and to call.
   */
  endPass?(): void;
}
