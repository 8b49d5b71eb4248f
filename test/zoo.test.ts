import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadModel } from "../src/engine/load.js";
import { llamaCppGreedy } from "./helpers/llama-cpp.js";
import { describe as describeAgreement, judge, RefStep } from "./helpers/logprobs.js";
import { MODELS, ZOO } from "./helpers/paths.js";
import { maxLogprobDelta, teacherForced } from "./helpers/teacher-forced.js";

interface ExpectedCase {
  prompt: string;
  prompt_tokens: number[];
  tokens: number[];
  top_probs: { id: number; top: { id: number; logprob: number }[] }[];
}

/**
 * llama-server merges the steps of a multi-byte character into one top_probs entry, keyed by the last
 * token; walk both lists to give each step its probabilities where they are known.
 */
function referenceSteps(c: ExpectedCase): RefStep[] {
  const steps: RefStep[] = c.tokens.map((token) => ({ token }));
  let j = 0;
  for (let i = 0; i < c.tokens.length && j < c.top_probs.length; i++) {
    if (c.top_probs[j].id === c.tokens[i]) steps[i].top = c.top_probs[j++].top;
  }
  return steps;
}

const ZOO_FILES = [
  "zoo-F32", "zoo-F16-pure", "zoo-BF16-pure", "zoo-Q8_0-pure", "zoo-Q5_1-pure", "zoo-Q5_0-pure", "zoo-Q4_1-pure",
  "zoo-Q4_0-pure", "zoo-Q6_K-pure", "zoo-Q5_K_S-pure", "zoo-Q5_K_M-mix", "zoo-Q4_K_S-pure", "zoo-Q4_K_M-mix",
  "zoo-Q3_K_S-pure", "zoo-Q3_K_M-mix", "zoo-Q2_K-pure", "zoo-Q2_K-mix",
];

/**
 * Where our first differing step is one whose probabilities llama-server folded away, ask llama.cpp
 * itself (node-llama-cpp, same file, same context) for that step's top five.
 */
async function fillFirstDivergence(modelPath: string, prompt: number[], reference: RefStep[], ours: { token: number }[]): Promise<void> {
  const first = reference.findIndex((step, i) => step.token !== ours[i].token);
  if (first < 0 || reference[first].top) return;
  const context = [...prompt, ...reference.slice(0, first).map((s) => s.token)];
  const [live] = await llamaCppGreedy(modelPath, context, 1, { flashAttention: false });
  reference[first].top = live.top;
}

async function check(name: string, modelPath: string): Promise<void> {
  const expected = JSON.parse(readFileSync(join(ZOO, "expected", `${name}.json`), "utf8")) as { cases: ExpectedCase[] };
  const loaded = loadModel(modelPath);
  const eos = loaded.tokenizer.vocab.endOfGeneration;
  const verdicts: string[] = [];
  for (const c of expected.cases) {
    const reference = referenceSteps(c);
    // The references were taken with ignore_eos, which bans end-of-generation from the greedy pick only.
    const ours = teacherForced(loaded.model, c.prompt_tokens, c.tokens, eos);
    await fillFirstDivergence(modelPath, c.prompt_tokens, reference, ours);
    const agreement = judge(ours, reference);
    verdicts.push(`${describeAgreement(agreement)} (max |Δlogprob| ${maxLogprobDelta(ours, reference).toFixed(4)})`);
    assert.notEqual(agreement.kind, "diverged", `${name} ${JSON.stringify(c.prompt)}: ${describeAgreement(agreement)}`);
  }
  loaded.file.close();
  loaded.backend.dispose?.();
  console.log(`  ${name.padEnd(20)} ${verdicts.join(" | ")}`);
}

describe("llama.cpp's greedy tokens (quant zoo expected/)", () => {
  it("stories260K: 5 prompts × 64 tokens", () => check("stories260K", join(MODELS, "stories260K.gguf")));
  it("llama-2-tiny-random", () => check("llama-2-tiny-random", join(MODELS, "llama-2-tiny-random.gguf")));
  for (const name of ZOO_FILES) it(name, () => check(name, join(ZOO, `${name}.gguf`)));
});
