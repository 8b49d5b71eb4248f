/** Real model shapes for random-weight models: the same tensors and sizes, none of the training. */
export interface ModelShape {
  embedding: number;
  layers: number;
  heads: number;
  kvHeads: number;
  feedForward: number;
  context: number;
  ropeBase: number;
  /** Share the embedding matrix with the output (no output.weight). */
  tiedOutput: boolean;
  /** Write Llama-3.1-style rope_freqs factors. */
  llama3RopeScaling: boolean;
  /** Head size, where it is not embedding / heads (Gemma). */
  headDim?: number;
  /** Sliding-window size of the local-attention layers (Gemma); 4096 when absent. */
  slidingWindow?: number;
  /** Phi-3's LongRoPE: the original context, past which the long factors apply. */
  ropeOriginalContext?: number;
  /** Mixture of experts: experts per block, experts each token uses, and an expert's hidden width. */
  experts?: { count: number; used: number; feedForward: number };
}

export const PRESETS: Record<string, ModelShape> = {
  tiny: { embedding: 64, layers: 2, heads: 4, kvHeads: 2, feedForward: 128, context: 512, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false },
  "small-llama3": { embedding: 256, layers: 2, heads: 4, kvHeads: 2, feedForward: 768, context: 2048, ropeBase: 500000, tiedOutput: true, llama3RopeScaling: true },
  small: { embedding: 256, layers: 4, heads: 8, kvHeads: 4, feedForward: 768, context: 1024, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false },
  // every query head with a KV head of its own, as in Llama-2 and Phi-3-mini
  "small-mha": { embedding: 256, layers: 4, heads: 4, kvHeads: 4, feedForward: 768, context: 1024, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false },
  "small-moe": { embedding: 256, layers: 4, heads: 8, kvHeads: 4, feedForward: 512, context: 1024, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false, experts: { count: 8, used: 2, feedForward: 256 } },
  // a window shorter than the test runs, so that the local layers really slide
  "small-gemma": { embedding: 256, layers: 4, heads: 8, kvHeads: 4, feedForward: 768, context: 1024, ropeBase: 10000, tiedOutput: true, llama3RopeScaling: false, headDim: 64, slidingWindow: 24 },
  // LongRoPE whose original context the test runs pass, so the long factors are the ones in use
  "small-phi3": { embedding: 256, layers: 4, heads: 8, kvHeads: 4, feedForward: 768, context: 1024, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false, ropeOriginalContext: 48 },
  "tinyllama-1.1b": { embedding: 2048, layers: 22, heads: 32, kvHeads: 4, feedForward: 5632, context: 2048, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false },
  "llama3.2-1b": { embedding: 2048, layers: 16, heads: 32, kvHeads: 8, feedForward: 8192, context: 131072, ropeBase: 500000, tiedOutput: true, llama3RopeScaling: true },
  "qwen2.5-0.5b": { embedding: 896, layers: 24, heads: 14, kvHeads: 2, feedForward: 4864, context: 32768, ropeBase: 1000000, tiedOutput: true, llama3RopeScaling: false },
  "gemma2-2b": { embedding: 2304, layers: 26, heads: 8, kvHeads: 4, feedForward: 9216, context: 8192, ropeBase: 10000, tiedOutput: true, llama3RopeScaling: false, headDim: 256, slidingWindow: 4096 },
  "llama2-7b": { embedding: 4096, layers: 32, heads: 32, kvHeads: 32, feedForward: 11008, context: 4096, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false },
};
