import { KvType } from "../../src/backend/backend.js";
import { LanguageModel } from "../../src/models/model.js";
import { logSoftmax, topIds } from "./logprobs.js";

export interface OurStep {
  token: number;
  logprobs: Float64Array;
  top5: number[];
}

/**
 * Runs our model along the reference's own tokens, so each step sees the same context as llama.cpp
 * did; our greedy choice at each step is recorded next to the full log-probabilities.
 */
export function teacherForced(
  model: LanguageModel,
  prompt: number[],
  reference: number[],
  banned: ReadonlySet<number> = new Set(),
  /** Whether the reference's probabilities were taken after the ban (node-llama-cpp) or before it (llama-server). */
  bannedInProbabilities = false,
  kvType: KvType = "f16",
): OurStep[] {
  const cache = model.createCache(Math.min(model.trainedContext, prompt.length + reference.length + 1), kvType);
  let logits = model.forward(prompt, cache);
  const steps: OurStep[] = [];
  for (const next of reference) {
    if (bannedInProbabilities) for (const id of banned) logits[id] = -Infinity;
    const logprobs = logSoftmax(logits);
    const top5 = topIds(logprobs, 5, banned);
    steps.push({ token: top5[0], logprobs, top5 });
    logits = model.forward([next], cache);
  }
  return steps;
}

/** Largest |Δ log-probability| over the reference's top tokens at the steps where they are known. */
export function maxLogprobDelta(steps: OurStep[], reference: { top?: { id: number; logprob: number }[] }[]): number {
  let max = 0;
  reference.forEach((ref, i) => {
    // Tokens llama.cpp gives probability 0 (log −∞) carry no comparable figure.
    for (const t of ref.top ?? []) if (Number.isFinite(t.logprob)) max = Math.max(max, Math.abs(steps[i].logprobs[t.id] - t.logprob));
  });
  return max;
}
