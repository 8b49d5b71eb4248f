import { BenchTest, benchTokenCount } from "../engine/bench.js";
import { UsageError } from "./fail.js";

/** llama.cpp loaded for --compare: runs one repetition of a test and returns its tokens a second. */
export interface LlamaCppBench {
  run(test: BenchTest): Promise<number>;
  dispose(): Promise<void>;
}

/**
 * The same measurements on llama.cpp through node-llama-cpp (a dev dependency, loaded only for --compare):
 * weights read into memory, the same threads and batch size, and each decode asking for the logits of its
 * last token and sampling nothing, as llama-bench's llama_batch_get_one does and as our forward pass does.
 * (node-llama-cpp's evaluateWithoutGeneratingNewTokens asks for no logits at all, so llama.cpp skips the
 * output matrix and the last layer's feed-forward: for Gemma-2-2B that is a quarter of the weights a token.)
 */
export async function openLlamaCppBench(modelPath: string, tokens: number[], threads: number): Promise<LlamaCppBench> {
  let lib: typeof import("node-llama-cpp");
  try {
    lib = await import("node-llama-cpp");
  } catch {
    throw new UsageError("--compare needs node-llama-cpp (a dev dependency: run from the repository after npm ci)");
  }
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath, useMmap: false });
  const ids = tokens as unknown as import("node-llama-cpp").Token[];
  // `_noSampling` is how node-llama-cpp's own embedding and ranking contexts decode with the last token's outputs
  const lastLogitsOnly: Parameters<import("node-llama-cpp").LlamaContextSequence["evaluate"]>[1] & { _noSampling: boolean } = { _noSampling: true };
  const decode = async (sequence: import("node-llama-cpp").LlamaContextSequence, batch: import("node-llama-cpp").Token[]): Promise<void> => {
    for await (const token of sequence.evaluate(batch, lastLogitsOnly)) void token;
  };
  return {
    async run(test) {
      const size = benchTokenCount(test) + 8;
      const context = await model.createContext({ contextSize: size, batchSize: 512, threads: { ideal: threads, min: threads }, flashAttention: false });
      const sequence = context.getSequence();
      // the depth, untimed (node-llama-cpp cuts it into batches of batchSize)
      if (test.depth > 0) await decode(sequence, ids.slice(0, test.depth));
      const started = performance.now();
      if (test.promptTokens > 0) await decode(sequence, ids.slice(test.depth, test.depth + test.promptTokens));
      else for (let i = test.depth; i < test.depth + test.genTokens; i++) await decode(sequence, [ids[i]]);
      const seconds = (performance.now() - started) / 1000;
      await context.dispose();
      return (test.promptTokens || test.genTokens) / seconds;
    },
    dispose: () => model.dispose(),
  };
}
