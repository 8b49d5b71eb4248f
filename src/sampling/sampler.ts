import { candidatesFrom, probabilities } from "./candidates.js";
import { minP, penalties, Processor, temperature, topK, topP } from "./processors.js";
import { randomSeed, SeededRandom } from "./rng.js";

export interface SamplingParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
  frequencyPenalty: number;
  presencePenalty: number;
  seed?: number;
  /** Token ids that may never be drawn (e.g. end-of-generation under --ignore-eos). */
  banned?: ReadonlySet<number>;
}

/** llama.cpp's defaults (common_params_sampling). */
export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1.0,
  repeatLastN: 64,
  frequencyPenalty: 0,
  presencePenalty: 0,
};

/** A chain of logits processors followed by one draw; temperature ≤ 0 means greedy. */
export class Sampler {
  private readonly chain: Processor[];
  private readonly rng: SeededRandom;

  constructor(readonly params: SamplingParams) {
    this.rng = new SeededRandom(params.seed ?? randomSeed());
    this.chain = [
      penalties({ lastN: params.repeatLastN, repeat: params.repeatPenalty, frequency: params.frequencyPenalty, presence: params.presencePenalty }),
    ];
    if (params.temperature > 0) {
      this.chain.push(topK(params.topK), topP(params.topP), minP(params.minP), temperature(params.temperature));
    }
  }

  sample(logits: ArrayLike<number>, history: readonly number[]): number {
    const { temperature, repeatLastN, repeatPenalty, frequencyPenalty, presencePenalty } = this.params;
    const penalised = repeatLastN !== 0 && (repeatPenalty !== 1 || frequencyPenalty !== 0 || presencePenalty !== 0);
    // greedy with nothing to reshape the logits: the chain's candidates (two arrays the vocabulary's size)
    // would cost about a millisecond a token for the same first largest logit
    if (temperature <= 0 && !penalised) return firstLargest(logits, this.params.banned);
    const c = candidatesFrom(logits);
    if (this.params.banned) {
      for (let i = 0; i < c.ids.length; i++) if (this.params.banned.has(c.ids[i])) c.logits[i] = -Infinity;
    }
    for (const process of this.chain) process(c, history);
    if (temperature <= 0) return c.ids[firstLargest(c.logits, undefined)];
    const probs = probabilities(c);
    let r = this.rng.next();
    for (let i = 0; i < probs.length; i++) {
      r -= probs[i];
      if (r < 0) return c.ids[i];
    }
    return c.ids[probs.length - 1];
  }
}

/** The lowest id among the largest logits, leaving out `banned` (−∞ there, as the chain would make them). */
function firstLargest(logits: ArrayLike<number>, banned: ReadonlySet<number> | undefined): number {
  let best = 0;
  let bestLogit = banned?.has(0) ? -Infinity : logits[0];
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > bestLogit && !banned?.has(i)) {
      best = i;
      bestLogit = logits[i];
    }
  }
  return best;
}

/** The K most likely tokens with their natural-log probabilities over the full vocabulary. */
/** ln Σ exp(logits), with the largest logit taken out first. */
export function logSumExp(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return Math.log(sum) + max;
}

/** The k likeliest tokens with their log-probabilities; `logSum` may be given when the caller has it. */
export function topLogprobs(logits: ArrayLike<number>, k: number, logSum = logSumExp(logits)): { id: number; logprob: number }[] {
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (best.length < k || logits[i] > logits[best[best.length - 1]]) {
      best.push(i);
      best.sort((a, b) => logits[b] - logits[a] || a - b);
      if (best.length > k) best.pop();
    }
  }
  return best.map((id) => ({ id, logprob: logits[id] - logSum }));
}
