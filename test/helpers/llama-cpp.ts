import { getLlama, Llama, Token } from "node-llama-cpp";
import { RefStep } from "./logprobs.js";

let llamaPromise: Promise<Llama> | undefined;

/** node-llama-cpp's bundled llama.cpp on the CPU: the oracle for tokens and log-probabilities. */
export function oracle(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: "never", logLevel: "error" as never });
  return llamaPromise;
}

export interface GreedyOptions {
  /** Never pick these tokens (llama.cpp's ignore_eos biases end-of-generation to -inf). */
  banned?: number[];
  flashAttention?: boolean;
  /** The KV cache's type for keys and values (llama.cpp's -ctk/-ctv; quantized values need flash attention). */
  kvCacheType?: "Q8_0";
}

/** llama.cpp's greedy continuation of `prompt` with the top-5 log-probabilities of each step. */
export async function llamaCppGreedy(modelPath: string, prompt: number[], steps: number, options: GreedyOptions = {}): Promise<RefStep[]> {
  const llama = await oracle();
  const model = await llama.loadModel({ modelPath, useMmap: false });
  try {
    const context = await model.createContext({ contextSize: Math.max(64, prompt.length + steps + 8), threads: 1, batchSize: 512, flashAttention: options.flashAttention ?? false, experimentalKvCacheKeyType: options.kvCacheType, experimentalKvCacheValueType: options.kvCacheType });
    try {
      const sequence = context.getSequence();
      const out: RefStep[] = [];
      // llama.cpp's ignore_eos: the greedy pick skips banned tokens; the probabilities stay unbiased.
      const banned = new Set(options.banned ?? []);
      const evaluation = sequence.evaluateWithMetadata(prompt as unknown as Token[], { probabilities: true }, { temperature: 0, yieldEogToken: true });
      let step = await evaluation.next();
      while (!step.done) {
        const ranked = [...step.value.probabilities.entries()].sort((a, b) => b[1] - a[1]);
        const top = ranked.slice(0, 5).map(([id, p]) => ({ id: id as number, logprob: Math.log(p) }));
        const pick = ranked.find(([id]) => !banned.has(id as number))?.[0] ?? step.value.token;
        out.push({ token: pick as number, top });
        if (out.length >= steps) break;
        step = await evaluation.next(pick === step.value.token ? undefined : pick);
      }
      await evaluation.return();
      return out;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** llama.cpp's tokenization of `text` (no BOS added); `special` parses control-token text. */
export async function llamaCppTokenize(modelPath: string, text: string, special = false): Promise<number[]> {
  const llama = await oracle();
  const model = await llama.loadModel({ modelPath, vocabOnly: true } as never);
  try {
    return [...model.tokenize(text, special)] as number[];
  } finally {
    await model.dispose();
  }
}
