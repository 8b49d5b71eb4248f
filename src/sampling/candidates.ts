/** The working set a sampler chain narrows down: token ids with their logits, optionally sorted. */
export interface Candidates {
  ids: number[];
  logits: number[];
  sorted: boolean;
}

export function candidatesFrom(logits: ArrayLike<number>): Candidates {
  const ids = new Array<number>(logits.length);
  const values = new Array<number>(logits.length);
  for (let i = 0; i < logits.length; i++) {
    ids[i] = i;
    values[i] = logits[i];
  }
  return { ids, logits: values, sorted: false };
}

export function sortDescending(c: Candidates): void {
  if (c.sorted) return;
  const order = c.ids.map((_, i) => i).sort((a, b) => c.logits[b] - c.logits[a] || c.ids[a] - c.ids[b]);
  c.ids = order.map((i) => c.ids[i]);
  c.logits = order.map((i) => c.logits[i]);
  c.sorted = true;
}

export function truncate(c: Candidates, keep: number): void {
  c.ids.length = keep;
  c.logits.length = keep;
}

/** Softmax probabilities of the current candidates (computed in f64). */
export function probabilities(c: Candidates): number[] {
  let max = -Infinity;
  for (const l of c.logits) if (l > max) max = l;
  const exps = c.logits.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
