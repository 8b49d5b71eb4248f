import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { benchTest, benchTokenCount, runBenchTest } from "../src/engine/bench.js";
import { loadModel } from "../src/engine/load.js";
import { LanguageModel } from "../src/models/model.js";
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
