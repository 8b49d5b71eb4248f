import { BenchTest } from "../engine/bench.js";
import { UsageError } from "./fail.js";

/**
 * The same measurements on llama.cpp through node-llama-cpp (a dev dependency, loaded only for --compare):
 * weights read into memory, plain token evaluation with no sampling, the same threads and batch size.
 */
export async function benchLlamaCpp(modelPath: string, tests: BenchTest[], tokens: number[], threads: number, reps: number): Promise<Map<string, number[]>> {
  let lib: typeof import("node-llama-cpp");
  try {
    lib = await import("node-llama-cpp");
  } catch {
    throw new UsageError("--compare needs node-llama-cpp (a dev dependency: run from the repository after npm ci)");
  }
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath, useMmap: false });
  const results = new Map<string, number[]>();
  try {
    for (const test of tests) {
      const size = Math.max(test.promptTokens, test.genTokens) + 8;
      const samples: number[] = [];
      for (let rep = -1; rep < reps; rep++) {
        const context = await model.createContext({ contextSize: size, batchSize: 512, threads: { ideal: threads, min: threads }, flashAttention: false });
        const sequence = context.getSequence();
        const ids = tokens as unknown as import("node-llama-cpp").Token[];
        const started = performance.now();
        if (test.promptTokens > 0) await sequence.evaluateWithoutGeneratingNewTokens(ids.slice(0, test.promptTokens));
        else for (let i = 0; i < test.genTokens; i++) await sequence.evaluateWithoutGeneratingNewTokens([ids[i]]);
        const seconds = (performance.now() - started) / 1000;
        await context.dispose();
        if (rep >= 0) samples.push((test.promptTokens || test.genTokens) / seconds); // rep -1 is the warm-up
      }
      results.set(test.name, samples);
    }
  } finally {
    await model.dispose();
  }
  return results;
}
