import { setTimeout as sleep } from "node:timers/promises";
import { WORKER_SPIN_MS } from "../backend/wasm/thread-pool.js";
import { BenchTest, benchTokenCount } from "../engine/bench.js";
import { openNativeLlamaCpp } from "./llama-cpp-native.js";

/** llama.cpp loaded for --compare: runs one repetition of a test and returns its tokens a second. */
export interface LlamaCppBench {
  run(test: BenchTest): Promise<number>;
  dispose(): Promise<void>;
}

/**
 * Our worker threads spin a while after their last job (WORKER_SPIN_MS) before they sleep: a llama.cpp
 * run waits this long first, so that its threads get the cores to themselves.
 */
export function untilOurWorkersSleep(): Promise<void> {
  return sleep(3 * WORKER_SPIN_MS);
}

/** Batches of a prompt, as llama-bench's n_batch and our own pass size. */
const BATCH = 512;

/**
 * The same measurements on llama.cpp as llama-bench takes them, through node-llama-cpp's own libraries
 * (see llama-cpp-native.ts): weights read into memory, the same threads and batch size, each decode
 * asking for the logits of its last token only, as llama_batch_get_one does and as our forward pass does.
 */
export async function openLlamaCppBench(modelPath: string, tokens: number[], threads: number): Promise<LlamaCppBench> {
  const model = (await openNativeLlamaCpp()).loadModel(modelPath);
  const ids = Int32Array.from(tokens);
  return {
    async run(test) {
      const context = model.createContext({ contextSize: benchTokenCount(test) + 8, batchSize: BATCH, threads });
      try {
        const readBatches = (from: number, to: number): void => {
          for (let at = from; at < to; at += BATCH) context.decode(ids.subarray(at, Math.min(to, at + BATCH)));
        };
        readBatches(0, test.depth); // untimed
        await untilOurWorkersSleep();
        const started = performance.now();
        if (test.promptTokens > 0) readBatches(test.depth, test.depth + test.promptTokens);
        else for (let i = test.depth; i < test.depth + test.genTokens; i++) context.decode(ids.subarray(i, i + 1));
        const seconds = (performance.now() - started) / 1000;
        return (test.promptTokens || test.genTokens) / seconds;
      } finally {
        context.dispose();
      }
    },
    dispose: async () => model.dispose(),
  };
}
