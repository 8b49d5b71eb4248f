import { RopeOrdering } from "../backend/backend.js";
import { kvBytesPerLayerToken, kvTypeProblem } from "../backend/kv-format.js";
import { HEAP_STORAGE, KvCache, KvView } from "../kv/kv-cache.js";
import { PagedKvPool } from "../kv/paged.js";
import { Linear, RmsNorm, SelfAttention, SwiGluFeedForward } from "../nn/blocks.js";
import { Weight } from "../tensor/weight.js";
import { BatchSequence, checkedKvType, ForwardOptions, LanguageModel } from "./model.js";
import { ModelContext, registerArchitecture } from "./registry.js";
import { readRope } from "./rope-config.js";

const MAX_DIM = 1 << 20;

interface Block {
  attentionNorm: RmsNorm;
  attention: SelfAttention;
  ffnNorm: RmsNorm;
  ffn: SwiGluFeedForward;
}

export interface DecoderOptions {
  /** How RoPE pairs a head's dimensions: adjacent (llama) or halves (NeoX, Qwen2). */
  ropeOrdering: RopeOrdering;
  /** Q, K and V carry biases (Qwen2). */
  attentionBias: boolean;
  /** Each head of Q and K is RMS-normalised before RoPE (Qwen3). */
  headNorm?: boolean;
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
  const nFf = hparams.count("feed_forward_length", MAX_DIM);
  const eps = hparams.require("attention.layer_norm_rms_epsilon");
  const trainedContext = hparams.count("context_length", 1 << 24, 2048);
  const kvWidth = kvHeads * headDim;
  const rope = readRope(hparams, weights, backend, headDim, options.ropeOrdering);
  const shape = { heads, kvHeads, headDim, scale: Math.fround(1 / Math.sqrt(headDim)) };

  const embedding: Weight = weights.require("token_embd.weight");
  const vocabSize = embedding.rows;
  const outputNorm = new RmsNorm(backend, weights.require("output_norm.weight", [nEmbd]), eps);
  const output = new Linear(backend, weights.optional("output.weight", [nEmbd, vocabSize]) ?? embedding);

  const blocks: Block[] = [];
  for (let i = 0; i < nLayer; i++) {
    const w = (name: string, dims: number[]): Weight => weights.require(`blk.${i}.${name}.weight`, dims);
    const bias = (name: string, width: number): Float32Array => backend.toFloat(weights.require(`blk.${i}.${name}.bias`, [width]));
    blocks.push({
      attentionNorm: new RmsNorm(backend, w("attn_norm", [nEmbd]), eps),
      attention: new SelfAttention(
        backend,
        {
          q: w("attn_q", [nEmbd, heads * headDim]),
          k: w("attn_k", [nEmbd, kvWidth]),
          v: w("attn_v", [nEmbd, kvWidth]),
          output: w("attn_output", [heads * headDim, nEmbd]),
          bias: options.attentionBias ? { q: bias("attn_q", heads * headDim), k: bias("attn_k", kvWidth), v: bias("attn_v", kvWidth) } : undefined,
          headNorm: options.headNorm ? { q: backend.toFloat(w("attn_q_norm", [headDim])), k: backend.toFloat(w("attn_k_norm", [headDim])), eps } : undefined,
        },
        shape,
        rope,
      ),
      ffnNorm: new RmsNorm(backend, w("ffn_norm", [nEmbd]), eps),
      ffn: new SwiGluFeedForward(backend, {
        gate: w("ffn_gate", [nEmbd, nFf]),
        up: w("ffn_up", [nEmbd, nFf]),
        down: w("ffn_down", [nFf, nEmbd]),
      }),
    });
  }

  function forwardBatch(sequences: readonly BatchSequence[]): Float32Array[] {
    const tokens: number[] = [];
    const positions: number[] = [];
    const segments = sequences.map(({ tokens: ids, cache }) => {
      if (cache.length + ids.length > cache.capacity) {
        throw new RangeError(`context overflow: ${cache.length} + ${ids.length} tokens exceed the context of ${cache.capacity}`);
      }
      const start = tokens.length;
      for (let t = 0; t < ids.length; t++) {
        tokens.push(ids[t]);
        positions.push(cache.length + t);
      }
      return { start, length: ids.length, cache };
    });
    const T = tokens.length;
    let x = backend.getRows(embedding, tokens); // [T, nEmbd]
    blocks.forEach((block, layer) => {
      const attentionSegments = segments.map(({ start, length, cache }) => ({ start, length, kv: cache.layer(layer) }));
      const attended = block.attention.forward(block.attentionNorm.forward(x), T, positions, attentionSegments);
      backend.addInPlace(attended, x); // residual: h = x + attn(norm(x))
      const ffnOut = block.ffn.forward(block.ffnNorm.forward(attended), T);
      backend.addInPlace(ffnOut, attended); // residual: x = h + ffn(norm(h))
      x = ffnOut;
    });
    for (const { length, cache } of segments) cache.length += length;
    // the rows whose logits are wanted: every row of an allLogits sequence, the last of the others
    const rows = sequences.flatMap((sequence, i) => {
      const { start, length } = segments[i];
      return sequence.allLogits ? Array.from({ length }, (_, t) => start + t) : [start + length - 1];
    });
    const picked = rows.length === T ? x : new Float32Array(rows.length * nEmbd);
    if (picked !== x) rows.forEach((row, i) => picked.set(x.subarray(row * nEmbd, (row + 1) * nEmbd), i * nEmbd));
    const logits = output.forward(outputNorm.forward(picked), rows.length); // [rows, vocab]
    let at = 0;
    return sequences.map((sequence, i) => {
      const count = sequence.allLogits ? segments[i].length : 1;
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
      return forwardBatch([{ tokens, cache, allLogits: options.allLogits }])[0];
    },
    forwardBatch,
  };
}

/** Llama (1, 2, 3.x), TinyLlama and the llama2.c family. */
registerArchitecture("llama", (context) => createDecoder(context, { ropeOrdering: "normal", attentionBias: false }));
