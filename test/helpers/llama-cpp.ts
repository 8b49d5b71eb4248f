import { getLlama, Llama, Token, TokenBias } from "node-llama-cpp";
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
}

/** llama.cpp's greedy continuation of `prompt` with the top-5 log-probabilities of each step. */
export async function llamaCppGreedy(modelPath: string, prompt: number[], steps: number, options: GreedyOptions = {}): Promise<RefStep[]> {
  const llama = await oracle();
  const model = await llama.loadModel({ modelPath, useMmap: false });
  try {
    const context = await model.createContext({ contextSize: Math.max(64, prompt.length + steps + 8), threads: 1, batchSize: 512, flashAttention: options.flashAttention ?? false });
    try {
      const sequence = context.getSequence();
      const out: RefStep[] = [];
      const bias = new TokenBias(model.tokenizer);
      for (const id of options.banned ?? []) bias.set(id as unknown as Token, "never");
      const evaluation = sequence.evaluateWithMetadata(prompt as unknown as Token[], { probabilities: true }, { temperature: 0, tokenBias: bias });
      for await (const step of evaluation) {
        const top = [...step.probabilities.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 5)
          .map(([id, p]) => ({ id, logprob: Math.log(p) }));
        out.push({ token: step.token, top });
        if (out.length >= steps) break;
      }
      return out;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** llama.cpp's tokenization of `text` with BOS as the model says. */
export async function llamaCppTokenize(modelPath: string, text: string): Promise<number[]> {
  const llama = await oracle();
  const model = await llama.loadModel({ modelPath, vocabOnly: true } as never);
  try {
    return [...model.tokenize(text, false)] as number[];
  } finally {
    await model.dispose();
  }
}
