import { KvType } from "../backend/backend.js";
import { kvTypeProblem } from "../backend/kv-format.js";
import { KvCache, KvView } from "../kv/kv-cache.js";
import { PagedKvPool } from "../kv/paged.js";

export interface ForwardOptions {
  /** Return logits for every input token ([T, vocab]) instead of only the last ([vocab]). */
  allLogits?: boolean;
}

/** One sequence's part of a batched forward pass. */
export interface BatchSequence {
  tokens: ArrayLike<number>;
  cache: KvView;
  /** Logits for every token of the sequence instead of its last only. */
  allLogits?: boolean;
}

export interface LanguageModel {
  readonly architecture: string;
  readonly vocabSize: number;
  /** The context length the model was trained with. */
  readonly trainedContext: number;
  /** Bytes of keys and values of one token over all layers, F16 unless another type is named. */
  kvBytesPerToken(type?: KvType): number;
  /** Why this model cannot keep its KV cache in `type`, if it cannot. */
  kvTypeProblem(type: KvType): string | undefined;
  createCache(capacity: number, type?: KvType): KvCache;
  /** A pool of KV blocks that sequences share (continuous batching with a paged cache). */
  createPagedPool(blocks: number, type?: KvType): PagedKvPool;
  /** Evaluates `tokens` at the positions following what `cache` holds, and extends the cache. */
  forward(tokens: ArrayLike<number>, cache: KvView, options?: ForwardOptions): Float32Array;
  /**
   * Several sequences in one pass (continuous batching): the matrix products run over all their tokens
   * together, attention per sequence over its own cache. Returns each sequence's logits.
   */
  forwardBatch(sequences: readonly BatchSequence[]): Float32Array[];
  /**
   * Hands back every logits array of one pass (forward's, or all of forwardBatch's) once they are read:
   * the next pass writes its logits there instead of a new array (a 256k vocabulary's are a megabyte a
   * token, and a new array costs more than filling it). Nothing may read them afterwards.
   */
  release(logits: readonly Float32Array[]): void;
}

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelError";
  }
}

/** The type, when the model's heads fit it; a ModelError saying why not otherwise. */
export function checkedKvType(type: KvType, headDim: number): KvType {
  const problem = kvTypeProblem(type, headDim);
  if (problem) throw new ModelError(problem);
  return type;
}
