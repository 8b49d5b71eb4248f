import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { benchTest, benchTokenCount, runBenchTest } from "../src/engine/bench.js";
import { loadModel } from "../src/engine/load.js";
import { openNativeLlamaCpp } from "../src/cli/llama-cpp-native.js";
import { LanguageModel } from "../src/models/model.js";
import { llamaCppGreedy } from "./helpers/llama-cpp.js";
import { logSoftmax, topIds } from "./helpers/logprobs.js";
import { STORIES } from "./helpers/paths.js";

/** The real model, with each forward call's tokens and the cache's length before it written down. */
function recorded(model: LanguageModel): { model: LanguageModel; calls: { tokens: number[]; cached: number }[] } {
  const calls: { tokens: number[]; cached: number }[] = [];
  const forward: LanguageModel["forward"] = (tokens, cache, options) => {
    calls.push({ tokens: Array.from(tokens), cached: cache.length });
    return model.forward(tokens, cache, options);
  };
  return { model: Object.assign(Object.create(model) as LanguageModel, { forward }), calls };
}

describe("bench tests at a depth (llama-bench's -d)", () => {
  it("names tests as llama-bench does", () => {
    assert.equal(benchTest(512, 0, 0).name, "pp512");
    assert.equal(benchTest(0, 128, 1024).name, "tg128 @ d1024");
    assert.equal(benchTokenCount(benchTest(0, 128, 1024)), 1152);
  });

  it("reads the depth into the cache in batches, then runs the test on top of it", () => {
    const { model, file } = loadModel(STORIES);
    try {
      const tokens = Array.from({ length: 40 }, (_, i) => 10 + i);
      const generation = recorded(model);
      assert.ok(runBenchTest(generation.model, benchTest(0, 4, 30), tokens, 16) > 0);
      assert.deepEqual(
        generation.calls.map(({ tokens: ids, cached }) => [ids.length, cached, ids[0]]),
        [[16, 0, 10], [14, 16, 26], [1, 30, 40], [1, 31, 41], [1, 32, 42], [1, 33, 43]],
      );
      const prompt = recorded(model);
      runBenchTest(prompt.model, benchTest(8, 0, 30), tokens, 16);
      assert.deepEqual(prompt.calls.at(-1), { tokens: tokens.slice(30, 38), cached: 30 });
    } finally {
      file.close();
    }
  });
});

describe("bench --compare's llama.cpp: node-llama-cpp's libraries called directly", () => {
  it("decodes as node-llama-cpp does, one sequence or two in a batch: the same greedy tokens and top-5 log-probabilities at every step", async () => {
    const prompt = [1, 403, 407, 263, 291];
    const steps = 12;
    const reference = await llamaCppGreedy(STORIES, prompt, steps);
    // `tolerance` of a log-probability: 1e-4 for one sequence; two sequences in one batch take llama.cpp's
    // matrix × matrix kernels, sums in another order whose error grows with the log-probability's size (on
    // an AVX-512 VNNI machine a top-5 entry of −7.29 moved by 2.3e-3), so theirs is 1e-3, relative past 1
    const agrees = (logits: Float32Array, step: number, label: string, tolerance: (logprob: number) => number = () => 1e-4): void => {
      const { token, top } = reference[step];
      const logprobs = logSoftmax(logits);
      const ours = topIds(logprobs, 5);
      assert.equal(ours[0], token, `${label}, step ${step}: greedy token`);
      assert.deepEqual(ours, top?.map(({ id }) => id), `${label}, step ${step}: top 5`);
      top?.forEach(({ id, logprob }) => assert.ok(Math.abs(logprobs[id] - logprob) < tolerance(logprob), `${label}, step ${step}: token ${id} log-probability ${logprobs[id]} vs ${logprob}`));
    };
    const model = (await openNativeLlamaCpp()).loadModel(STORIES);
    try {
      // the prompt as one batch, then each pick alone: the bench's pp and tg calls
      const one = model.createContext({ contextSize: 64, batchSize: 512, threads: 2 });
      try {
        one.decode(Int32Array.from(prompt));
        for (let step = 0; step < steps; step++) {
          agrees(one.lastLogits(), step, "one sequence");
          one.decode(Int32Array.of(reference[step].token));
        }
      } finally {
        one.dispose();
      }
      // two sequences in each decode, bench:serve's steps: both prompts in one batch, then both picks
      const two = model.createContext({ contextSize: 128, batchSize: 512, threads: 2, sequences: 2 });
      try {
        const entry = (token: number, position: number, sequence: number, logits: boolean) => ({ token, position, sequence, logits });
        two.decodeEntries([0, 1].flatMap((sequence) => prompt.map((token, i) => entry(token, i, sequence, i === prompt.length - 1))));
        let rows = [prompt.length - 1, 2 * prompt.length - 1];
        for (let step = 0; step < steps; step++) {
          rows.forEach((row, sequence) => agrees(two.logitsAt(row), step, `sequence ${sequence} of two`, (logprob) => 1e-3 * Math.max(1, Math.abs(logprob))));
          two.decodeEntries([0, 1].map((sequence) => entry(reference[step].token, prompt.length + step, sequence, true)));
          rows = [0, 1];
        }
      } finally {
        two.dispose();
      }
    } finally {
      model.dispose();
    }
  });
});
