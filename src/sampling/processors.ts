import { Candidates, probabilities, sortDescending, truncate } from "./candidates.js";

/**
 * Logits processors in llama.cpp's order and with its semantics. Each one narrows or reshapes the
 * candidates in place; none of them draws a random number.
 */
export type Processor = (candidates: Candidates, history: readonly number[]) => void;

export interface PenaltyParams {
  lastN: number;
  repeat: number;
  frequency: number;
  presence: number;
}

/** Repetition (divide positive / multiply negative logits), frequency and presence penalties over the last N tokens. */
export function penalties({ lastN, repeat, frequency, presence }: PenaltyParams): Processor {
  return (c, history) => {
    if (lastN === 0 || (repeat === 1 && frequency === 0 && presence === 0)) return;
    const window = lastN < 0 ? history : history.slice(-lastN);
    const counts = new Map<number, number>();
    for (const t of window) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (let i = 0; i < c.ids.length; i++) {
      const count = counts.get(c.ids[i]);
      if (!count) continue;
      let logit = c.logits[i];
      logit = logit <= 0 ? logit * repeat : logit / repeat;
      c.logits[i] = logit - count * frequency - presence;
    }
    c.sorted = false;
  };
}

export function topK(k: number): Processor {
  return (c) => {
    if (k <= 0 || k >= c.ids.length) return;
    sortDescending(c);
    truncate(c, k);
  };
}

/** Keeps the smallest prefix whose probability mass reaches p. */
export function topP(p: number, minKeep = 1): Processor {
  return (c) => {
    if (p >= 1) return;
    sortDescending(c);
    const probs = probabilities(c);
    let cumulative = 0;
    let keep = c.ids.length;
    for (let i = 0; i < probs.length; i++) {
      cumulative += probs[i];
      if (cumulative >= p && i + 1 >= minKeep) {
        keep = i + 1;
        break;
      }
    }
    truncate(c, keep);
  };
}

/** Keeps tokens whose probability is at least p times the most likely one's. */
export function minP(p: number, minKeep = 1): Processor {
  return (c) => {
    if (p <= 0) return;
    sortDescending(c);
    const threshold = c.logits[0] + Math.log(p);
    let keep = 0;
    while (keep < c.ids.length && (c.logits[keep] >= threshold || keep < minKeep)) keep++;
    truncate(c, keep);
  };
}

export function temperature(t: number): Processor {
  return (c) => {
    for (let i = 0; i < c.logits.length; i++) c.logits[i] /= t;
  };
}
