import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { routeTokens } from "../src/nn/moe.js";
import { ggmlGelu, softcap, softmaxInPlace } from "../src/quant/float-order.js";
import { floatToHalf, HALF_TO_FLOAT } from "../src/quant/index.js";

/** Softmax in f64, the mathematical value the f32 kernel must round to within a few ulps. */
function softmax64(x: number[]): number[] {
  const max = Math.max(...x);
  const exps = x.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

describe("mixture-of-experts routing (llama.cpp's build_moe_ffn, softmax gating)", () => {
  it("softmax rows: chunks of eight and a tail, within f32 rounding of the exact values", () => {
    for (const n of [8, 13, 64]) {
      const x = Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * 6);
      const row = new Float32Array([99, ...x, -99]); // neighbours stay untouched
      softmaxInPlace(row, 1, n);
      assert.equal(row[0], 99);
      assert.equal(row[n + 1], -99);
      softmax64(x).forEach((p, i) => assert.ok(Math.abs(row[1 + i] - p) <= 4e-7 * Math.max(p, 1e-3), `n=${n} i=${i}: ${row[1 + i]} vs ${p}`));
    }
  });

  it("picks the most probable experts in order, weights normalised to sum to one (Mixtral, Qwen3-MoE)", () => {
    const logits = Float32Array.from([0.1, 2.5, -1, 1.9, 0.3, 2.2, -3, 0, /* token 2 */ 5, 0, 0, 0, 0, 0, 0, 4.5]);
    const routes = routeTokens(logits.slice(), 8, 2, { used: 2, normalize: true });
    assert.deepEqual([...routes.experts], [1, 5, 0, 7]);
    const p = softmax64([0.1, 2.5, -1, 1.9, 0.3, 2.2, -3, 0]);
    assert.ok(Math.abs(routes.weights[0] - p[1] / (p[1] + p[5])) < 1e-6);
    assert.ok(Math.abs(routes.weights[0] + routes.weights[1] - 1) < 1e-6);
    assert.ok(Math.abs(routes.weights[2] - 1 / (1 + Math.exp(-0.5))) < 1e-6);
  });

  it("keeps the softmax probabilities when not normalising (Qwen2-MoE), and breaks ties by the lower index", () => {
    const logits = Float32Array.from([1, 3, 3, 1]);
    const routes = routeTokens(logits, 4, 1, { used: 2, normalize: false });
    assert.deepEqual([...routes.experts], [1, 2]);
    const p = softmax64([1, 3, 3, 1]);
    assert.ok(Math.abs(routes.weights[0] - p[1]) < 1e-6 && Math.abs(routes.weights[1] - p[2]) < 1e-6);
  });
});

describe("Gemma's pieces", () => {
  it("GELU goes through ggml's F16 table: x rounded to F16, the tanh-approximated value rounded to F16; 0 and x beyond ±10", () => {
    const exact = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    for (let x = -9.99; x < 10; x += 0.0137) {
      const got = ggmlGelu(x);
      const indexed = HALF_TO_FLOAT[floatToHalf(x)];
      assert.equal(got, HALF_TO_FLOAT[floatToHalf(got)], "an F16 value");
      assert.ok(Math.abs(got - exact(indexed)) <= Math.abs(exact(indexed)) * 2 ** -10 + 1e-7, `gelu(${x}) = ${got}, exact ${exact(indexed)}`);
    }
    assert.equal(ggmlGelu(-10), 0);
    assert.equal(ggmlGelu(12.345), 12.345);
  });

  it("soft-capping: cap·tanh(x/cap), close to x when small, never past the cap", () => {
    assert.ok(Math.abs(softcap(0.5, 50) - 50 * Math.tanh(0.01)) < 1e-6 && Math.abs(softcap(0.5, 50) - 0.5) < 1e-4);
    assert.ok(Math.abs(softcap(40, 30) - 30 * Math.tanh(4 / 3)) < 1e-5);
    assert.ok(softcap(1e6, 30) <= 30 && softcap(-1e6, 30) >= -30);
  });
});
