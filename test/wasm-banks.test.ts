import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { WasmBackend } from "../src/backend/wasm/wasm-backend.js";
import { loadModel } from "../src/engine/load.js";
import { ZOO } from "./helpers/paths.js";

/** Logits of a prompt batch, then of three single tokens, on one backend. */
function logitsOf(backend: WasmBackend, path: string): Float32Array[] {
  const { model, file } = loadModel(path, backend);
  const cache = model.createCache(64);
  const prompt = Array.from({ length: 24 }, (_, i) => (100 + 37 * i) % 500);
  const steps = [model.forward(prompt, cache)];
  for (const token of [5, 300, 77]) steps.push(model.forward([token], cache));
  cache.dispose();
  file.close();
  return steps;
}

describe("a model spread over several WebAssembly memories", () => {
  it("computes the very logits of one memory (small banks stand in for 4 GiB ones)", () => {
    const path = join(ZOO, "zoo-Q4_K_M-mix.gguf");
    const one = new WasmBackend(2);
    const many = new WasmBackend(2, { bankBytes: 384 * 1024 });
    const expected = logitsOf(one, path);
    const got = logitsOf(many, path);
    assert.equal(one.bankCount, 1);
    assert.ok(many.bankCount >= 3, `only ${many.bankCount} banks`);
    got.forEach((logits, step) => assert.ok(logits.every((v, i) => Object.is(v, expected[step][i])), `step ${step} differs`));
    one.dispose();
    many.dispose();
  });
});
