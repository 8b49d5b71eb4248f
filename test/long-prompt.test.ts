import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadModel } from "../src/engine/load.js";
import { STORIES } from "./helpers/paths.js";

describe("a prompt longer than one forward pass", () => {
  it("goes in passes whose logits are those of the same tokens fed in pieces", () => {
    const { model, file } = loadModel(STORIES);
    try {
      const tokens = Array.from({ length: 700 }, (_, i) => 1 + ((i * 37) % (model.vocabSize - 1)));
      const whole = model.createCache(700);
      const all = model.forward(tokens, whole, { allLogits: true });
      assert.equal(all.length, 700 * model.vocabSize);
      assert.equal(whole.length, 700);

      const pieces = model.createCache(700);
      const first = model.forward(tokens.slice(0, 300), pieces, { allLogits: true }).slice();
      const rest = model.forward(tokens.slice(300), pieces, { allLogits: true }).slice();
      assert.deepEqual(all.subarray(0, first.length), first);
      assert.deepEqual(all.subarray(first.length), rest);

      const lastOnly = model.forward(tokens, model.createCache(700));
      assert.deepEqual(lastOnly, all.subarray(699 * model.vocabSize));
    } finally {
      file.close();
    }
  });

  it("a batch over several passes gives each sequence the logits it gets alone, wherever the passes cut it", () => {
    const { model, file } = loadModel(STORIES);
    try {
      const prompt = (length: number, seed: number): number[] => Array.from({ length }, (_, i) => 1 + ((i * 53 + seed * 101) % (model.vocabSize - 1)));
      // 100 + 200 + 40 tokens: passes of 128 cut the second and the third; the third wants every token's logits
      const prompts = [prompt(100, 1), prompt(200, 2), prompt(40, 3)];
      const caches = prompts.map(() => model.createCache(256));
      const batched = model.forwardBatch(prompts.map((tokens, i) => ({ tokens, cache: caches[i], allLogits: i === 2 }))).map((logits) => logits.slice());
      assert.deepEqual(caches.map((cache) => cache.length), [100, 200, 40]);
      prompts.forEach((tokens, i) => {
        const alone = model.forward(tokens, model.createCache(256), { allLogits: i === 2 });
        assert.deepEqual(batched[i], alone, `sequence ${i}`);
      });
    } finally {
      file.close();
    }
  });
});
