/** Natural-log softmax over a full logits vector, in f64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logSum = Math.log(sum) + max;
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - logSum;
  return out;
}

export function topIds(values: ArrayLike<number>, k: number, banned: ReadonlySet<number> = new Set()): number[] {
  const ids: number[] = [];
  for (let i = 0; i < values.length; i++) if (!banned.has(i)) ids.push(i);
  return ids.sort((a, b) => values[b] - values[a] || a - b).slice(0, k);
}

export interface RefStep {
  /** llama.cpp's chosen token. */
  token: number;
  /** llama.cpp's top-5 log-probabilities at this step, when known. */
  top?: { id: number; logprob: number }[];
}

export type Agreement =
  | { kind: "exact"; steps: number }
  | { kind: "near-tie"; step: number; gap: number }
  | { kind: "diverged"; step: number; reason: string };

/**
 * vLLM's check_logprobs_close rule, as the quant zoo README states it: identical up to the first
 * divergence, and there both tokens are in each other's top five with llama.cpp's log-probabilities
 * of the two within `maxGap`.
 */
export function judge(ours: { token: number; logprobs: Float64Array; top5: number[] }[], ref: RefStep[], maxGap = 0.1): Agreement {
  for (let i = 0; i < ref.length; i++) {
    const mine = ours[i];
    if (mine.token === ref[i].token) continue;
    const refTop = ref[i].top;
    if (!refTop) return { kind: "diverged", step: i, reason: "llama.cpp's log-probabilities are not known at this step" };
    const theirsForOurs = refTop.find((t) => t.id === mine.token);
    const theirsForTheirs = refTop.find((t) => t.id === ref[i].token);
    if (!theirsForOurs || !theirsForTheirs) return { kind: "diverged", step: i, reason: `our token ${mine.token} is not in llama.cpp's top 5` };
    if (!mine.top5.includes(ref[i].token)) return { kind: "diverged", step: i, reason: `llama.cpp's token ${ref[i].token} is not in our top 5` };
    const gap = Math.abs(theirsForOurs.logprob - theirsForTheirs.logprob);
    if (gap > maxGap) return { kind: "diverged", step: i, reason: `gap ${gap.toFixed(3)} between the two tokens exceeds ${maxGap}` };
    return { kind: "near-tie", step: i, gap };
  }
  return { kind: "exact", steps: ref.length };
}

export function describe(a: Agreement): string {
  if (a.kind === "exact") return `exact ${a.steps}`;
  if (a.kind === "near-tie") return `near-tie at ${a.step} (gap ${a.gap.toFixed(3)})`;
  return `DIVERGED at ${a.step}: ${a.reason}`;
}
