import { LanguageModel } from "../models/model.js";

export interface BenchTest {
  /** "pp512" or "tg128", llama-bench's names. */
  name: string;
  promptTokens: number;
  genTokens: number;
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
 * llama-bench's two measurements on our engine: prompt processing (one batch of `promptTokens` into an
 * empty cache) and text generation (`genTokens` single-token steps from an empty cache).
 */
export function runBenchTest(model: LanguageModel, test: BenchTest, tokens: number[], batchSize = 512): number {
  const cache = model.createCache(Math.max(test.promptTokens, test.genTokens) + 1);
  const started = performance.now();
  if (test.promptTokens > 0) {
    for (let at = 0; at < test.promptTokens; at += batchSize) model.release([model.forward(tokens.slice(at, Math.min(test.promptTokens, at + batchSize)), cache)]);
  } else {
    for (let i = 0; i < test.genTokens; i++) model.release([model.forward([tokens[i]], cache)]);
  }
  const seconds = (performance.now() - started) / 1000;
  cache.dispose();
  return (test.promptTokens || test.genTokens) / seconds;
}
