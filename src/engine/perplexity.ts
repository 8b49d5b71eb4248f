import { LanguageModel } from "../models/model.js";

export interface PerplexityOptions {
  /** Tokens per chunk (llama-perplexity's -c). */
  contextSize: number;
  /** Chunks to score at most (all that fit when undefined). */
  maxChunks?: number;
  /** Tokens evaluated per forward pass within a chunk. */
  batchSize?: number;
  /** The token that replaces each chunk's first token, as llama-perplexity does when the model adds BOS. */
  bos?: number;
}

export interface PerplexityChunk {
  /** 1-based, as llama-perplexity prints it. */
  index: number;
  /** Perplexity over every token scored so far. */
  runningPerplexity: number;
}

export interface PerplexityResult {
  perplexity: number;
  /** llama-perplexity's ± figure: the standard error of the mean NLL, carried through exp. */
  uncertainty: number;
  chunks: number;
  scoredTokens: number;
}

/** ln Σ exp over a row, with the max taken first and the sum in f64 on expf'd f32 terms, as llama-perplexity does. */
function logSoftmaxAt(logits: Float32Array, offset: number, vocab: number, token: number): number {
  let max = logits[offset];
  for (let i = 1; i < vocab; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.fround(Math.exp(Math.fround(logits[offset + i] - max)));
  return Math.fround(logits[offset + token] - max) - Math.log(sum);
}

/**
 * Perplexity as llama-perplexity computes it: the text cut into chunks of `contextSize` tokens, each
 * evaluated from an empty cache, and only the second half of each chunk scored (each of those tokens
 * then has at least half a context before it).
 */
export function* perplexity(model: LanguageModel, tokens: readonly number[], options: PerplexityOptions): Generator<PerplexityChunk, PerplexityResult> {
  const n = options.contextSize;
  const available = Math.floor(tokens.length / n);
  if (available < 1 || tokens.length < 2 * n) {
    throw new RangeError(`the text has ${tokens.length} tokens; perplexity with a context of ${n} needs at least ${2 * n}`);
  }
  const chunks = Math.min(available, options.maxChunks ?? available);
  const batch = Math.min(options.batchSize ?? 512, n);
  const first = Math.floor(n / 2);
  const vocab = model.vocabSize;
  let nll = 0;
  let nll2 = 0;
  let count = 0;
  for (let c = 0; c < chunks; c++) {
    const start = c * n;
    const chunk = tokens.slice(start, start + n);
    if (options.bos !== undefined) chunk[0] = options.bos;
    const cache = model.createCache(n);
    try {
      for (let b = 0; b < n; b += batch) {
        const piece = chunk.slice(b, Math.min(b + batch, n));
        const needed = b + piece.length > first; // only the scored half needs its logits
        const logits = model.forward(piece, cache, { allLogits: needed });
        if (needed) {
          for (let j = Math.max(first, b); j < b + piece.length && j < n - 1; j++) {
            const value = -logSoftmaxAt(logits, (j - b) * vocab, vocab, tokens[start + j + 1]);
            nll += value;
            nll2 += value * value;
            count++;
          }
        }
        model.release([logits]);
      }
    } finally {
      cache.dispose();
    }
    yield { index: c + 1, runningPerplexity: Math.exp(nll / count) };
  }
  const mean = nll / count;
  const variance = nll2 / count - mean * mean;
  const perplexityValue = Math.exp(mean);
  const uncertainty = variance > 0 && count > 1 ? Math.sqrt(variance / (count - 1)) * perplexityValue : 0;
  return { perplexity: perplexityValue, uncertainty, chunks, scoredTokens: count };
}
