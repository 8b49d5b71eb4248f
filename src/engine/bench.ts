import { LanguageModel } from "../models/model.js";

export interface BenchTest {
  /** "pp512" or "tg128", llama-bench's names ("tg128 @ d1024" at a depth). */
  name: string;
  promptTokens: number;
  genTokens: number;
  /** Tokens already in the cache when the timed part starts (llama-bench's -d); they are not timed. */
  depth: number;
}

/** A test as llama-bench names it: pp512 or tg128, with " @ d1024" when it starts at a depth. */
export function benchTest(promptTokens: number, genTokens: number, depth: number): BenchTest {
  const base = promptTokens > 0 ? `pp${promptTokens}` : `tg${genTokens}`;
  return { name: depth > 0 ? `${base} @ d${depth}` : base, promptTokens, genTokens, depth };
}

/** Tokens a test reads: its depth, then its prompt or its generated tokens' inputs. */
export function benchTokenCount(test: BenchTest): number {
  return test.depth + Math.max(test.promptTokens, test.genTokens);
}

export interface BenchResult extends BenchTest {
  /** Tokens per second of each repetition. */
  samples: number[];
  mean: number;
  stddev: number;
}

export function summarize(test: BenchTest, samples: number[]): BenchResult {
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  const variance = samples.length > 1 ? samples.reduce((a, s) => a + (s - mean) ** 2, 0) / (samples.length - 1) : 0;
  return { ...test, samples, mean, stddev: Math.sqrt(variance) };
}

/** Deterministic ordinary token ids for benchmark input (llama-bench uses random ones). */
export function benchTokens(count: number, vocabSize: number, avoid: ReadonlySet<number>): number[] {
  const ids: number[] = [];
  for (let i = 0; ids.length < count; i++) {
    const id = (i * 7919 + 13) % vocabSize;
    if (!avoid.has(id)) ids.push(id);
  }
  return ids;
}

/**
 * llama-bench's two measurements on our engine: prompt processing (one batch of `promptTokens`) and text
 * generation (`genTokens` single-token steps), each into a cache that already holds `depth` tokens
 * (read in batches first, untimed; none by default).
 */
export function runBenchTest(model: LanguageModel, test: BenchTest, tokens: number[], batchSize = 512): number {
  const cache = model.createCache(benchTokenCount(test) + 1);
  const readBatches = (from: number, to: number): void => {
    for (let at = from; at < to; at += batchSize) model.release([model.forward(tokens.slice(at, Math.min(to, at + batchSize)), cache)]);
  };
  readBatches(0, test.depth);
  const started = performance.now();
  if (test.promptTokens > 0) {
    readBatches(test.depth, test.depth + test.promptTokens);
  } else {
    for (let i = test.depth; i < test.depth + test.genTokens; i++) model.release([model.forward([tokens[i]], cache)]);
  }
  const seconds = (performance.now() - started) / 1000;
  cache.dispose();
  return (test.promptTokens || test.genTokens) / seconds;
}
