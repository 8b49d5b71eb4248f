import { KvCache } from "../kv/kv-cache.js";
import { LanguageModel } from "../models/model.js";
import { Sampler, topLogprobs } from "../sampling/sampler.js";
import { StreamDecoder } from "../tokenizer/stream-decoder.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";

export interface GenerateOptions {
  maxTokens: number;
  sampler: Sampler;
  ignoreEos?: boolean;
  /** Report the top K log-probabilities of each step. */
  logprobs?: number;
  contextSize?: number;
  /**
   * A cache kept across calls (a chat): the prompt's longest prefix already in it is reused, and the
   * tokens fed are recorded, so the next turn computes only what is new.
   */
  session?: CachedSession;
}

export interface CachedSession {
  cache: KvCache;
  /** The tokens whose keys and values the cache holds, in order. */
  tokens: number[];
}

export interface GeneratedToken {
  id: number;
  /** Text this token completes (may be empty while a UTF-8 character is unfinished). */
  text: string;
  logprobs?: { id: number; logprob: number }[];
}

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  promptMs: number;
  generationMs: number;
  stopReason: "eos" | "length" | "context";
  /** Prompt tokens found in the session's cache and not computed again. */
  reusedTokens: number;
  /** Bytes held back at the end that never formed a complete character, decoded with replacement. */
  trailingText: string;
}

/** Greedy or sampled continuation of `prompt`, one token at a time; returns the stats when done. */
export function* generate(
  model: LanguageModel,
  tokenizer: Tokenizer,
  prompt: number[],
  options: GenerateOptions,
): Generator<GeneratedToken, GenerationStats> {
  const capacity = options.session?.cache.capacity ?? options.contextSize ?? Math.min(model.trainedContext, 4096);
  if (prompt.length === 0) throw new RangeError("the prompt is empty");
  if (prompt.length >= capacity) throw new RangeError(`the prompt has ${prompt.length} tokens; the context holds ${capacity}`);
  const cache: KvCache = options.session?.cache ?? model.createCache(capacity);
  const fed = options.session?.tokens ?? [];
  // at least the last prompt token is computed again: its logits are where generation starts
  const reused = Math.min(commonPrefixLength(fed, prompt), prompt.length - 1);
  cache.truncate(reused);
  fed.length = reused;
  const decoder = new StreamDecoder(tokenizer);
  const history = [...prompt];
  const startPrompt = performance.now();
  let logits = model.forward(prompt.slice(reused), cache);
  fed.push(...prompt.slice(reused));
  const promptMs = performance.now() - startPrompt;
  const startGen = performance.now();
  let generated = 0;
  let stopReason: GenerationStats["stopReason"] = "length";
  while (generated < options.maxTokens) {
    const id = options.sampler.sample(logits, history);
    const logprobs = options.logprobs ? topLogprobs(logits, options.logprobs) : undefined;
    if (!options.ignoreEos && tokenizer.isEndOfGeneration(id)) {
      stopReason = "eos";
      break;
    }
    generated++;
    history.push(id);
    yield { id, text: decoder.push(id), logprobs };
    if (generated >= options.maxTokens) break;
    if (cache.length >= capacity) {
      stopReason = "context";
      break;
    }
    model.release([logits]);
    logits = model.forward([id], cache);
    fed.push(id);
  }
  model.release([logits]);
  const generationMs = performance.now() - startGen;
  if (!options.session) cache.dispose();
  return { promptTokens: prompt.length, generatedTokens: generated, promptMs, generationMs, stopReason, reusedTokens: reused, trailingText: decoder.flush() };
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
