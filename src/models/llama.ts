import { AttentionSegment, AttentionShape, RopeOrdering } from "../backend/backend.js";
import { kvBytesPerLayerToken, kvTypeProblem } from "../backend/kv-format.js";
import { HEAP_STORAGE, KvCache, KvView } from "../kv/kv-cache.js";
import { PagedKvPool } from "../kv/paged.js";
import { FeedForward, FeedForwardWeights, Linear, RmsNorm, SelfAttention, GatedFeedForward } from "../nn/blocks.js";
import { DecoderBlock, forwardBlocks } from "../nn/decoder-block.js";
import { MoeFeedForward } from "../nn/moe.js";
import { Weight } from "../tensor/weight.js";
import { BatchSequence, checkedKvType, ForwardOptions, LanguageModel, ModelError } from "./model.js";
import { ModelContext, registerArchitecture } from "./registry.js";
import { readLongRope, readRope } from "./rope-config.js";

const MAX_DIM = 1 << 20;

export interface DecoderOptions {
  /** How RoPE pairs a head's dimensions: adjacent (llama) or halves (NeoX, Qwen2). */
  ropeOrdering: RopeOrdering;
  /** Q, K and V carry biases (Qwen2). */
  attentionBias: boolean;
  /** Each head of Q and K is RMS-normalised before RoPE (Qwen3). */
  headNorm?: boolean;
  /**
   * Mixture of experts, in the blocks that have a router (ffn_gate_inp): whether the chosen experts'
   * weights are normalised to sum to one, and the metadata key of an expert's width when it is not
   * feed_forward_length.
   */
  experts?: { normalize: boolean; widthKey?: string; shared?: boolean };
  /** Q, K and V in one matrix (attn_qkv), gate and up in one (ffn_up, the gate's rows first): Phi-3. */
  fusedProjections?: boolean;
  /** Q times 1/√headSize after RoPE, and the scores left unscaled (Phi-3; Gemma has a rule of its own). */
  scaleQueryAfterRope?: boolean;
  /**
   * Gemma 2/3's block: embeddings times √nEmbd, GeGLU, RMSNorm on the attention's and the FFN's outputs,
   * Q scaled after RoPE instead of the scores, scores and logits soft-capped where the metadata says.
   */
  gemma?: {
    /** Layers that attend through the sliding window (attention.sliding_window). */
    slidingLayer(layer: number): boolean;
    /** RoPE base and scale of the sliding layers, where they differ from the global ones (Gemma 3: 10000, 1). */
    slidingRope?: { freqBase: number; freqScale: number };
    /** Block count of the 27B model, whose query scale is 1/√(nEmbd/heads) instead of 1/√headSize. */
    layersOf27B: number;
  };
}

/**
 * The pre-norm decoder that Llama and its relatives share: RMSNorm, RoPE, grouped-query attention over
 * the KV cache, SwiGLU, tied or separate output. Architectures differ by the options.
 */
export function createDecoder({ backend, hparams, weights }: ModelContext, options: DecoderOptions): LanguageModel {
  const nEmbd = hparams.count("embedding_length", MAX_DIM);
  const nLayer = hparams.count("block_count", 4096);
  const heads = hparams.count("attention.head_count", MAX_DIM);
  const kvHeads = hparams.count("attention.head_count_kv", heads, heads);
  const headDim = hparams.count("attention.key_length", MAX_DIM, nEmbd / heads);
  const eps = hparams.require("attention.layer_norm_rms_epsilon");
  const trainedContext = hparams.count("context_length", 1 << 24, 2048);
  const kvWidth = kvHeads * headDim;
  const rope = readRope(hparams, weights, backend, headDim, options.ropeOrdering);
  const gemma = options.gemma;
  const shape: AttentionShape = { heads, kvHeads, headDim, scale: 1, softcap: softcapping("attn_logit_softcapping") };
  // without a window every layer attends globally (Gemma 3 converted without one)
  const window = gemma && hparams.number("attention.sliding_window") !== undefined ? hparams.count("attention.sliding_window", 1 << 24) : undefined;
  const queryScaleBase = gemma ? (nLayer === gemma.layersOf27B ? Math.floor(nEmbd / heads) : headDim) : options.scaleQueryAfterRope ? headDim : undefined;
  const queryScale = queryScaleBase === undefined ? undefined : Math.fround(1 / Math.fround(Math.sqrt(queryScaleBase)));
  // the scores are scaled in the attention unless Q already was
  if (queryScale === undefined) shape.scale = Math.fround(1 / Math.sqrt(headDim));
  const longRope = readLongRope(hparams, weights, backend, rope);
  const finalSoftcap = softcapping("final_logit_softcapping");
  const embeddingScale = gemma ? Math.fround(Math.sqrt(nEmbd)) : undefined;

  /** A soft-capping value from the metadata; 0 or absent means none. */
  function softcapping(key: string): number | undefined {
    const value = hparams.number(key);
    return value ? Math.fround(value) : undefined;
  }

  const embedding: Weight = weights.require("token_embd.weight");
  const vocabSize = embedding.rows;
  const outputNorm = new RmsNorm(backend, weights.require("output_norm.weight", [nEmbd]), eps);
  const output = new Linear(backend, weights.optional("output.weight", [nEmbd, vocabSize]) ?? embedding);

  /** A dense SwiGLU, or the experts where the block has a router. */
  function feedForward(i: number): FeedForward {
    const router = weights.optional(`blk.${i}.ffn_gate_inp.weight`);
    const dense = (suffix: string, width: number): FeedForwardWeights => {
      const down = weights.require(`blk.${i}.ffn_down${suffix}.weight`, [width, nEmbd]);
      if (options.fusedProjections) return { gateUp: weights.require(`blk.${i}.ffn_up${suffix}.weight`, [nEmbd, 2 * width]), down };
      return { gate: weights.require(`blk.${i}.ffn_gate${suffix}.weight`, [nEmbd, width]), up: weights.require(`blk.${i}.ffn_up${suffix}.weight`, [nEmbd, width]), down };
    };
    if (!router) return new GatedFeedForward(backend, dense("", hparams.count("feed_forward_length", MAX_DIM)), gemma ? "gelu" : "silu");
    if (!options.experts) throw new ModelError(`blk.${i}.ffn_gate_inp.weight: ${hparams.arch} has no mixture-of-experts layers`);
    const count = hparams.count("expert_count", 512);
    const used = hparams.count("expert_used_count", count);
    const width = hparams.count(options.experts.widthKey ?? "feed_forward_length", MAX_DIM);
    const stacked = (name: string, dims: [number, number]): Weight[] => weights.requireExperts(`blk.${i}.${name}_exps.weight`, [...dims, count]);
    const gates = stacked("ffn_gate", [nEmbd, width]);
    const ups = stacked("ffn_up", [nEmbd, width]);
    const downs = stacked("ffn_down", [width, nEmbd]);
    const shared = options.experts.shared
      ? { weights: dense("_shexp", hparams.count("expert_shared_feed_forward_length", MAX_DIM)), gate: weights.optional(`blk.${i}.ffn_gate_inp_shexp.weight`, [nEmbd]) }
      : undefined;
    return new MoeFeedForward(
      backend,
      { router: weights.require(`blk.${i}.ffn_gate_inp.weight`, [nEmbd, count]), experts: gates.map((gate, e) => ({ gate, up: ups[e], down: downs[e] })), shared },
      { used, normalize: options.experts.normalize },
    );
  }

  const blocks: DecoderBlock[] = [];
  for (let i = 0; i < nLayer; i++) {
    const w = (name: string, dims: number[]): Weight => weights.require(`blk.${i}.${name}.weight`, dims);
    const bias = (name: string, width: number): Float32Array => backend.toFloat(weights.require(`blk.${i}.${name}.bias`, [width]));
    const sliding = window !== undefined && (gemma?.slidingLayer(i) ?? false);
    const layerRope = sliding && gemma?.slidingRope ? { ...rope, ...gemma.slidingRope } : rope;
    blocks.push(new DecoderBlock(backend, {
      attentionNorm: new RmsNorm(backend, w("attn_norm", [nEmbd]), eps),
      attention: new SelfAttention(
        backend,
        {
          projection: options.fusedProjections
            ? { fused: w("attn_qkv", [nEmbd, heads * headDim + 2 * kvWidth]) }
            : { q: w("attn_q", [nEmbd, heads * headDim]), k: w("attn_k", [nEmbd, kvWidth]), v: w("attn_v", [nEmbd, kvWidth]) },
          output: w("attn_output", [heads * headDim, nEmbd]),
          bias: options.attentionBias ? { q: bias("attn_q", heads * headDim), k: bias("attn_k", kvWidth), v: bias("attn_v", kvWidth) } : undefined,
          headNorm: options.headNorm ? { q: backend.toFloat(w("attn_q_norm", [headDim])), k: backend.toFloat(w("attn_k_norm", [headDim])), eps } : undefined,
          queryScale,
        },
        sliding ? { ...shape, window } : shape,
        layerRope,
      ),
      ffnNorm: new RmsNorm(backend, w("ffn_norm", [nEmbd]), eps),
      ffn: feedForward(i),
      postNorms: gemma ? { attention: new RmsNorm(backend, w("post_attention_norm", [nEmbd]), eps), ffn: new RmsNorm(backend, w("post_ffw_norm", [nEmbd]), eps) } : undefined,
    }));
  }

  /**
   * The sequences in passes of PASS_TOKENS tokens at most, cut where a pass fills up (a sequence's tokens
   * may span passes): each token's arithmetic is the same however its batch is cut, so the logits are the
   * one pass's, bit for bit. A sequence's logits come from the pass that holds its last token (or, with
   * allLogits, from every pass that holds its tokens, joined).
   */
  function forwardBatch(sequences: readonly BatchSequence[]): Float32Array[] {
    for (const { tokens: ids, cache } of sequences) {
      if (cache.length + ids.length > cache.capacity) {
        throw new RangeError(`context overflow: ${cache.length} + ${ids.length} tokens exceed the context of ${cache.capacity}`);
      }
    }
    const total = sequences.reduce((sum, { tokens: ids }) => sum + ids.length, 0);
    if (total <= PASS_TOKENS) return forwardPass(sequences.map((sequence) => ({ ...sequence, logits: true })));
    const passes: { owner: number; piece: PassPiece }[][] = [[]];
    let room = PASS_TOKENS;
    sequences.forEach(({ tokens: ids, cache, allLogits }, owner) => {
      for (let at = 0; at < ids.length; ) {
        if (room === 0) {
          passes.push([]);
          room = PASS_TOKENS;
        }
        const count = Math.min(room, ids.length - at);
        const piece = Array.from({ length: count }, (_, i) => ids[at + i]);
        at += count;
        room -= count;
        passes[passes.length - 1].push({ owner, piece: { tokens: piece, cache, allLogits, logits: allLogits === true || at === ids.length } });
      }
    });
    const parts: Float32Array[][] = sequences.map(() => []);
    for (const pass of passes) {
      const logits = forwardPass(pass.map(({ piece }) => piece));
      pass.forEach(({ owner, piece }, i) => {
        if (piece.logits) parts[owner].push(logits[i]);
      });
    }
    return parts.map((list) => (list.length === 1 ? list[0] : joined(list)));
  }

  /** One pass over every piece's tokens; the logits of the pieces that want them (empty arrays for the others). */
  function forwardPass(sequences: readonly PassPiece[]): Float32Array[] {
    const tokens: number[] = [];
    const positions: number[] = [];
    const segments = sequences.map(({ tokens: ids, cache }) => {
      const start = tokens.length;
      for (let t = 0; t < ids.length; t++) {
        tokens.push(ids[t]);
        positions.push(cache.length + t);
      }
      return { start, length: ids.length, cache };
    });
    const T = tokens.length;
    let x = backend.getRows(embedding, tokens); // [T, nEmbd]
    if (embeddingScale !== undefined) scaleInPlace(x, embeddingScale);
    // LongRoPE: the long factors once a sequence's context exceeds the original one, as llama.cpp picks them
    const batchRope = longRope && (segments.some(({ cache }) => cache.capacity > longRope.originalContext) ? longRope.long : longRope.short);
    const segmentsOf = (layer: number): AttentionSegment[] => segments.map(({ start, length, cache }) => ({ start, length, kv: cache.layer(layer) }));
    x = forwardBlocks(backend, blocks, x, T, positions, segmentsOf, batchRope);
    for (const { length, cache } of segments) cache.length += length;
    // the rows whose logits are wanted: every row of an allLogits sequence, the last of the others
    const rows = sequences.flatMap((sequence, i) => {
      const { start, length } = segments[i];
      if (!sequence.logits) return [];
      return sequence.allLogits ? Array.from({ length }, (_, t) => start + t) : [start + length - 1];
    });
    if (rows.length === 0) {
      backend.recycle?.(x);
      backend.endPass?.();
      return sequences.map(() => new Float32Array(0));
    }
    const picked = rows.length === T ? x : new Float32Array(rows.length * nEmbd);
    if (picked !== x) rows.forEach((row, i) => picked.set(x.subarray(row * nEmbd, (row + 1) * nEmbd), i * nEmbd));
    const outputIn = outputNorm.forward(picked);
    backend.recycle?.(x);
    const logits = output.forward(outputIn, rows.length); // [rows, vocab]
    backend.recycle?.(outputIn);
    if (finalSoftcap !== undefined) backend.softcapInPlace(logits, finalSoftcap);
    backend.endPass?.();
    let at = 0;
    return sequences.map((sequence, i) => {
      const count = !sequence.logits ? 0 : sequence.allLogits ? segments[i].length : 1;
      const slice = logits.subarray(at * vocabSize, (at + count) * vocabSize);
      at += count;
      return slice;
    });
  }

  return {
    architecture: hparams.arch,
    vocabSize,
    trainedContext,
    kvBytesPerToken: (type = "f16") => nLayer * kvBytesPerLayerToken(kvWidth, type),
    kvTypeProblem: (type) => kvTypeProblem(type, headDim),
    createCache: (capacity, type = "f16") => new KvCache(nLayer, kvWidth, capacity, backend.halfStorage, checkedKvType(type, headDim)),
    createPagedPool: (blocks, type = "f16") => new PagedKvPool(nLayer, kvWidth, blocks, backend.halfStorage ?? HEAP_STORAGE, checkedKvType(type, headDim)),
    forward(tokens: ArrayLike<number>, cache: KvView, options: ForwardOptions = {}): Float32Array {
      const { allLogits } = options;
      return forwardBatch([{ tokens, cache, allLogits }])[0];
    },
    forwardBatch,
    release(logits: readonly Float32Array[]): void {
      // forwardBatch's are views of one array: that array goes back whole
      const arrays = new Set(logits.map((slice) => slice.buffer));
      for (const buffer of arrays) if (buffer instanceof ArrayBuffer) backend.recycle?.(new Float32Array(buffer));
    },
  };
}

/**
 * The most tokens of one forward pass; longer batches go in several (as llama.cpp's ubatches). A pass's
 * activations and scratch grow with its tokens, and the WebAssembly backend runs a pass of this many as one
 * program (decoderLayers). In-process A/B against one pass of 512 tokens (the serve's step of four
 * 128-token prompts), same logits: 1.04× on TinyLlama-1.1B (the median of eight runs, 0.98–1.09), 1.06×
 * on Qwen2.5-0.5B and 1.07× on Llama-3.2-1B, and the peak resident memory of `tsllm bench -p 512` 17 MB
 * (TinyLlama) to 28 MB (Llama-3.2) lower.
 */
const PASS_TOKENS = 128;

/** Piece of a sequence in one pass: `logits` says whether the pass returns its logits. */
interface PassPiece extends BatchSequence {
  logits: boolean;
}

/** Logits of consecutive passes as one array. */
function joined(parts: readonly Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/** x·s in place, f32 (ggml_scale). */
function scaleInPlace(x: Float32Array, s: number): void {
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i] * s);
}

/** Llama (1, 2, 3.x), TinyLlama, the llama2.c family, Mistral and Mixtral (experts with normalised weights). */
registerArchitecture("llama", (context) => createDecoder(context, { ropeOrdering: "normal", attentionBias: false, experts: { normalize: true } }));
