import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { candidatesFrom } from "../src/sampling/candidates.js";
import { minP, penalties, temperature, topK, topP } from "../src/sampling/processors.js";
import { DEFAULT_SAMPLING, Sampler, topLogprobs } from "../src/sampling/sampler.js";

const LOGITS = [1.0, 3.0, 2.0, -1.0, 0.5];

describe("logits processors", () => {
  it("top-k keeps the k most likely", () => {
    const c = candidatesFrom(LOGITS);
    topK(2)(c, []);
    assert.deepEqual(c.ids, [1, 2]);
  });

  it("top-p keeps the smallest prefix reaching p", () => {
    const c = candidatesFrom(LOGITS);
    // softmax: 3.0 → 0.629, 2.0 → 0.231, 1.0 → 0.085 …; 0.629 + 0.231 = 0.86 ≥ 0.8
    topP(0.8)(c, []);
    assert.deepEqual(c.ids, [1, 2]);
  });

  it("min-p keeps tokens at least p times as likely as the best", () => {
    const c = candidatesFrom(LOGITS);
    // exp(2 - 3) = 0.37 ≥ 0.3; exp(1 - 3) = 0.135 < 0.3
    minP(0.3)(c, []);
    assert.deepEqual(c.ids, [1, 2]);
  });

  it("repetition penalty divides positive logits and multiplies negative ones; frequency and presence subtract", () => {
    const c = candidatesFrom(LOGITS);
    penalties({ lastN: 64, repeat: 2, frequency: 0.5, presence: 0.25 })(c, [1, 1, 3]);
    assert.deepEqual(c.logits, [1.0, 3.0 / 2 - 2 * 0.5 - 0.25, 2.0, -1.0 * 2 - 0.5 - 0.25, 0.5]);
  });

  it("temperature scales logits", () => {
    const c = candidatesFrom(LOGITS);
    temperature(0.5)(c, []);
    assert.deepEqual(c.logits, LOGITS.map((l) => l / 0.5));
  });
});

describe("sampler", () => {
  it("is greedy at temperature 0", () => {
    const s = new Sampler({ ...DEFAULT_SAMPLING, temperature: 0 });
    assert.equal(s.sample(LOGITS, []), 1);
  });

  it("never draws a banned token", () => {
    const s = new Sampler({ ...DEFAULT_SAMPLING, temperature: 0, banned: new Set([1]) });
    assert.equal(s.sample(LOGITS, []), 2);
  });

  it("greedy takes the first of tied largest logits, skips banned ones and honours penalties", () => {
    const ties = Float32Array.of(2, 5, -1, 5, 4);
    assert.equal(new Sampler({ ...DEFAULT_SAMPLING, temperature: 0 }).sample(ties, []), 1);
    assert.equal(new Sampler({ ...DEFAULT_SAMPLING, temperature: 0, banned: new Set([0, 1]) }).sample(ties, []), 3);
    assert.equal(new Sampler({ ...DEFAULT_SAMPLING, temperature: 0, banned: new Set([0, 1, 2, 3, 4]) }).sample(ties, []), 0);
    // 5 / 2 = 2.5 for both repeated tokens, so the 4 wins
    assert.equal(new Sampler({ ...DEFAULT_SAMPLING, temperature: 0, repeatPenalty: 2 }).sample(ties, [1, 3]), 4);
  });

  it("reproduces a run from its seed", () => {
    const draw = (seed: number): number[] => {
      const s = new Sampler({ ...DEFAULT_SAMPLING, temperature: 1, topK: 0, topP: 1, minP: 0, seed });
      return Array.from({ length: 50 }, () => s.sample(LOGITS, []));
    };
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
  });

  it("draws in proportion to the softmax", () => {
    const s = new Sampler({ ...DEFAULT_SAMPLING, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 123 });
    const counts = new Array<number>(LOGITS.length).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[s.sample(LOGITS, [])]++;
    const expected = topLogprobs(LOGITS, LOGITS.length).sort((a, b) => a.id - b.id).map((t) => Math.exp(t.logprob));
    counts.forEach((count, id) => assert.ok(Math.abs(count / n - expected[id]) < 0.015, `token ${id}: ${count / n} vs ${expected[id]}`));
  });

  it("reports top log-probabilities over the full vocabulary", () => {
    const top = topLogprobs(LOGITS, 2);
    assert.deepEqual(top.map((t) => t.id), [1, 2]);
    const total = LOGITS.reduce((sum, l) => sum + Math.exp(l), 0);
    assert.ok(Math.abs(top[0].logprob - (3 - Math.log(total))) < 1e-12);
  });
});
