import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { KernelInstance } from "../src/backend/wasm/kernels.js";
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

describe("a WebAssembly memory's given-back blocks", () => {
  it("are reused in pieces, and join their neighbours again when given back", () => {
    const bank = new KernelInstance();
    const a = bank.allocate(1 << 20);
    const b = bank.allocate(1 << 20);
    const top = bank.used;
    bank.heap.fill(7, a, a + (1 << 20));
    bank.release(a, 1 << 20);
    bank.release(b, 1 << 20);
    // two neighbours make one block of 2 MB, whose first 100 bytes (zeroed) and next 16-aligned piece are taken
    const first = bank.reuse(100);
    const second = bank.reuse(1 << 20);
    assert.equal(first, a);
    assert.equal(second, a + 112);
    assert.ok(bank.heap.subarray(a, a + 100).every((byte) => byte === 0));
    // more than what is left of the block comes from the top
    assert.equal(bank.reuse(1 << 20), undefined);
    assert.equal(bank.used, top);
    bank.release(second as number, 1 << 20);
    bank.release(first as number, 100);
    assert.equal(bank.reuse(2 << 20), a);
  });
});
