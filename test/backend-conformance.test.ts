import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backend, LayerKv, RopeParams } from "../src/backend/backend.js";
import { kvRowHalves, roundQueryForKeys } from "../src/backend/kv-format.js";
import { ScalarBackend } from "../src/backend/scalar/scalar-backend.js";
import { KernelInstance, kernelsUseRelaxedSimd } from "../src/backend/wasm/kernels.js";
import { WasmBackend } from "../src/backend/wasm/wasm-backend.js";
import { GgmlType, ggmlTypeName } from "../src/gguf/index.js";
import { floatToHalf, HALF_TO_FLOAT, quantFormat, rowBytes } from "../src/quant/index.js";
import { NormalSource } from "../src/synth/normal.js";
import { Weight } from "../src/tensor/weight.js";

/** Every backend must pass the same checks against plain f64 math. Faster backends join this list. */
const BACKENDS: Backend[] = [new ScalarBackend(), new WasmBackend()];

const normal = new NormalSource(2024);
const randn = (n: number, std = 1): Float32Array => normal.fill(new Float32Array(n), std);

function weightOf(type: GgmlType, values: Float32Array, cols: number): Weight {
  const f = quantFormat(type);
  const rows = values.length / cols;
  const data = new Uint8Array(rowBytes(f, cols) * rows);
  for (let r = 0; r < rows; r++) f.quantizeRow(values, r * cols, data, r * rowBytes(f, cols), cols);
  return new Weight(`test.${ggmlTypeName(type)}`, type, [cols, rows], data);
}

function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, label);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance * (1 + Math.abs(expected[i])), `${label}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function ropeReference(x: Float32Array, heads: number, headDim: number, positions: number[], p: RopeParams): Float64Array {
  const out = Float64Array.from(x);
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let i = 0; i < p.dims / 2; i++) {
        const theta = (p.freqScale * positions[t] * Math.pow(p.freqBase, (-2 * i) / p.dims)) / (p.freqFactors ? p.freqFactors[i] : 1);
        const [a, b] = p.ordering === "normal" ? [base + 2 * i, base + 2 * i + 1] : [base + i, base + i + p.dims / 2];
        out[a] = x[a] * Math.cos(theta) - x[b] * Math.sin(theta);
        out[b] = x[a] * Math.sin(theta) + x[b] * Math.cos(theta);
      }
    }
  }
  return out;
}

for (const backend of BACKENDS) {
  describe(`backend conformance: ${backend.name}`, () => {
    for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K]) {
      it(`matmul and getRows with ${ggmlTypeName(type)} weights`, () => {
        const cols = 256;
        const rows = 6;
        const tokens = 3;
        const w = weightOf(type, randn(cols * rows, 0.5), cols);
        const dense = backend.toFloat(w);
        const x = randn(cols * tokens);
        const y = backend.matmul(w, x, tokens);
        const expected = new Float64Array(tokens * rows);
        let scale = 0;
        for (let t = 0; t < tokens; t++) {
          for (let r = 0; r < rows; r++) {
            for (let c = 0; c < cols; c++) expected[t * rows + r] += dense[r * cols + c] * x[t * cols + c];
          }
        }
        for (const v of expected) scale = Math.max(scale, Math.abs(v));
        // the activations are quantized to the weight's partner type: 8-bit types err by under 2% of the range
        const tolerance = type === GgmlType.F32 ? 1e-5 : type === GgmlType.F16 || type === GgmlType.BF16 ? 1e-2 : 0.02 * scale;
        closeTo(y, expected, tolerance, `${ggmlTypeName(type)} matmul`);
        closeTo(backend.getRows(w, [4, 1]), [...dense.subarray(4 * cols, 5 * cols), ...dense.subarray(cols, 2 * cols)], 0, "getRows");
      });
    }

    it("RMSNorm", () => {
      const width = 64;
      const x = randn(width * 2);
      const gain = randn(width, 0.1).map((g) => 1 + g);
      const y = backend.rmsNorm(x, gain, 1e-5, width);
      for (let row = 0; row < 2; row++) {
        let sum = 0;
        for (let i = 0; i < width; i++) sum += x[row * width + i] ** 2;
        const scale = 1 / Math.sqrt(sum / width + 1e-5);
        closeTo(y.subarray(row * width, (row + 1) * width), Array.from(gain, (g, i) => x[row * width + i] * scale * g), 1e-6, "rmsNorm");
      }
    });

    for (const ordering of ["normal", "neox"] as const) {
      it(`RoPE, ${ordering} ordering, with and without frequency factors`, () => {
        const heads = 2;
        const headDim = 16;
        const positions = [0, 1, 7, 300];
        for (const freqFactors of [undefined, Float32Array.from({ length: 6 }, (_, i) => 1 + i)]) {
          const params: RopeParams = { ordering, dims: 12, freqBase: 10000, freqScale: 0.5, freqFactors };
          const x = randn(positions.length * heads * headDim);
          const expected = ropeReference(x, heads, headDim, positions, params);
          backend.rope(x, heads, headDim, positions, params);
          closeTo(x, expected, 2e-5, `rope ${ordering}`);
        }
      });
    }

    it("causal attention with grouped KV heads over an F16 cache", () => {
      const heads = 4;
      const kvHeads = 2;
      const headDim = 32;
      const T = 5;
      const kvWidth = kvHeads * headDim;
      const q = randn(T * heads * headDim);
      const k = randn(T * kvWidth);
      const v = randn(T * kvWidth);
      const kv = { keys: new Uint16Array(64 * kvWidth), values: new Uint16Array(64 * kvWidth) };
      const positions = [0, 1, 2, 3, 4];
      backend.storeKv(kv, k, v, positions, kvWidth);
      const scale = 1 / Math.sqrt(headDim);
      const out = backend.attention(q, kv, positions, { heads, kvHeads, headDim, scale });
      const h16 = (x: number): number => HALF_TO_FLOAT[floatToHalf(x)];
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < heads; h++) {
          const g = Math.floor(h / (heads / kvHeads)) * headDim;
          const scores = positions.slice(0, t + 1).map((_, j) => {
            let dot = 0;
            for (let d = 0; d < headDim; d++) dot += h16(q[(t * heads + h) * headDim + d]) * h16(k[j * kvWidth + g + d]);
            return dot * scale;
          });
          const max = Math.max(...scores);
          const exps = scores.map((s) => Math.exp(s - max));
          const total = exps.reduce((a, b) => a + b, 0);
          for (let d = 0; d < headDim; d++) {
            const expected = exps.reduce((acc, e, j) => acc + (e / total) * h16(v[j * kvWidth + g + d]), 0);
            const got = out[(t * heads + h) * headDim + d];
            assert.ok(Math.abs(got - expected) < 2e-3, `t${t} h${h} d${d}: ${got} vs ${expected}`);
          }
        }
      }
    });

    it("SwiGLU and residual add", () => {
      const gate = randn(100, 3);
      const up = randn(100);
      closeTo(backend.swiglu(gate, up), Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]), 1e-6, "swiglu");
      const a = randn(10);
      const b = randn(10);
      const sum = Array.from(a, (x, i) => x + b[i]);
      backend.addInPlace(a, b);
      closeTo(a, sum, 1e-7, "add");
    });
  });
}

/** Runs a WASM activation quantizer on x and compares its bytes with the scalar twin's quantizeRow. */
function assertSameQuantization(kernels: KernelInstance, quantize: (src: number, dst: number, n: number) => void, type: GgmlType, x: Float32Array): void {
  const format = quantFormat(type);
  const expected = new Uint8Array(rowBytes(format, x.length));
  format.quantizeRow(x, 0, expected, 0, x.length);
  const src = kernels.allocate(x.length * 4);
  const dst = kernels.allocate(expected.length);
  new Float32Array(kernels.heap.buffer).set(x, src / 4);
  quantize(src, dst, x.length);
  assert.deepEqual(kernels.heap.slice(dst, dst + expected.length), expected);
}

describe("the WASM kernels against their scalar twins", () => {
  const scalar = new ScalarBackend();
  const wasm = new WasmBackend();
  // Single tokens take query heads in pairs where the head size is a multiple of 16, and an odd group's
  // last head alone (6/2 heads), and every head alone without grouping (4/4, 3/3: two slots a pass, and
  // rows of 24 dimensions, no multiple of 16); the cases from 700 and 200 split across threads (by KV head
  // and by chunks of query tokens). Groups of 8 and 7 query heads are TinyLlama's and Qwen2.5's.
  const attentionCases = [[64, 1, 4, 2, 37], [64, 1, 4, 2, 5], [64, 3, 4, 2, 37], [8, 1, 4, 2, 37], [8, 2, 4, 2, 37], [4, 1, 4, 2, 37], [32, 40, 4, 2, 37], [80, 1, 4, 2, 37], [64, 1, 6, 2, 37], [64, 1, 8, 4, 700], [64, 70, 8, 4, 200], [128, 1, 4, 4, 100], [32, 1, 3, 3, 45], [24, 1, 3, 3, 45], [64, 2, 2, 2, 30], [32, 1, 20, 20, 60, 1], [64, 1, 16, 2, 201], [64, 1, 14, 2, 150]];
  // (the last on one thread, whose lone heads would all go in one block but for the scores' room)
  for (const [headDim, T, heads, kvHeads, start, threads = 2] of attentionCases) {
    it(`attention over the cache is bit-identical (head size ${headDim}, ${T} token${T > 1 ? "s" : ""}, ${heads}/${kvHeads} heads, from ${start}, ${threads} thread${threads > 1 ? "s" : ""})`, () => {
      const fast = threads === 1 ? new WasmBackend(1) : wasm;
      const kvWidth = kvHeads * headDim;
      const capacity = start + T + 40;
      const positions = Array.from({ length: T }, (_, t) => start + t);
      const fill = (kv: { keys: Uint16Array; values: Uint16Array }): void => {
        const all = Array.from({ length: start + T }, (_, i) => i);
        scalar.storeKv(kv, randn((start + T) * kvWidth), randn((start + T) * kvWidth), all, kvWidth);
      };
      const plain = { keys: new Uint16Array(capacity * kvWidth), values: new Uint16Array(capacity * kvWidth) };
      fill(plain);
      const resident = { keys: fast.halfStorage.allocate(capacity * kvWidth), values: fast.halfStorage.allocate(capacity * kvWidth) };
      resident.keys.set(plain.keys);
      resident.values.set(plain.values);
      const q = randn(T * heads * headDim, 2);
      // q is rounded through F16: the overflow edge, the subnormal range and signed zero, in the first head
      q.set([65519, 65520, -7e4, 3e-6, -6.1e-5, -0].slice(0, headDim), 0);
      const shape = { heads, kvHeads, headDim, scale: Math.fround(1 / Math.sqrt(headDim)) };
      const expected = scalar.attention(q, plain, positions, shape);
      const got = fast.attention(q, resident, positions, shape);
      assert.ok(got.every((v, i) => Object.is(v, expected[i])), "attention differs");
      fast.halfStorage.release(resident.keys);
      fast.halfStorage.release(resident.values);
      if (fast !== wasm) fast.dispose();
    });
  }

  for (const [headDim, T, start, kvHeads] of [[64, 1, 37, 2], [64, 24, 100, 2], [64, 1, 37, 4]]) {
    it(`a paged cache (rows through a block table) gives the contiguous cache's attention, bit for bit (${T} token${T > 1 ? "s" : ""} from ${start}, 4/${kvHeads} heads)`, () => {
      const heads = 4;
      const kvWidth = kvHeads * headDim;
      const count = start + T;
      const blocks = Math.ceil(count / 16);
      // blocks scattered over a larger arena, in reverse order with gaps between them
      const table = Array.from({ length: blocks }, (_, b) => 2 * (blocks - b) + 1);
      const rows = Int32Array.from({ length: count }, (_, p) => table[p >> 4] * 16 + (p & 15));
      const arenaRows = (2 * blocks + 2) * 16;
      const k = randn(count * kvWidth, 5);
      const v = randn(count * kvWidth, 6);
      const all = Array.from({ length: count }, (_, i) => i);
      const plain = { keys: new Uint16Array(count * kvWidth), values: new Uint16Array(count * kvWidth) };
      scalar.storeKv(plain, k, v, all, kvWidth);
      const pagedScalar = { keys: new Uint16Array(arenaRows * kvWidth), values: new Uint16Array(arenaRows * kvWidth), rows };
      scalar.storeKv(pagedScalar, k, v, all, kvWidth);
      const pagedWasm = { keys: wasm.halfStorage.allocate(arenaRows * kvWidth), values: wasm.halfStorage.allocate(arenaRows * kvWidth), rows };
      wasm.storeKv(pagedWasm, k, v, all, kvWidth);
      const positions = Array.from({ length: T }, (_, t) => start + t);
      const q = randn(T * heads * headDim, 7);
      const shape = { heads, kvHeads, headDim, scale: Math.fround(1 / Math.sqrt(headDim)) };
      const expected = scalar.attention(q, plain, positions, shape);
      for (const got of [scalar.attention(q, pagedScalar, positions, shape), wasm.attention(q, pagedWasm, positions, shape)]) {
        assert.ok(got.every((x, i) => Object.is(x, expected[i])), "attention differs");
      }
      wasm.halfStorage.release(pagedWasm.keys);
      wasm.halfStorage.release(pagedWasm.values);
    });
  }

  it("RoPE in the WASM kernels is the scalar twin's, bit for bit: both orderings, partial dimensions, factors", () => {
    // dims 20 leaves a tail of two pairs past the groups of four, and 12 dimensions of each head unrotated
    for (const [headDim, dims] of [[64, 64], [256, 256], [32, 20]]) {
      for (const ordering of ["normal", "neox"] as const) {
        const heads = 3;
        const positions = [0, 7, 300, 4095];
        const freqFactors = Float32Array.from({ length: dims / 2 }, (_, i) => 1 + i / 7);
        for (const params of [{ ordering, dims, freqBase: 10000, freqScale: 1 }, { ordering, dims, freqBase: 500000, freqScale: 0.25, freqFactors, attnFactor: 1.1 }]) {
          const x = randn(positions.length * heads * headDim, 2);
          const expected = x.slice();
          scalar.rope(expected, heads, headDim, positions, params);
          wasm.rope(x, heads, headDim, positions, params);
          assert.ok(x.every((v, i) => Object.is(v, expected[i])), `rope ${ordering} ${headDim}/${dims} differs`);
        }
      }
    }
  });

  for (const type of ["f16", "q8_0"] as const) {
    it(`KV rows the WASM kernels store are the scalar twin's, bit for bit (${type}, through a block table)`, () => {
      // 3 tokens of 72 values: F16's tail of 8 lanes, and (q8_0) blocks of 32 after the first 64 values
      const kvWidth = type === "q8_0" ? 64 : 72;
      const positions = [5, 6, 7];
      const rows = Int32Array.from({ length: 8 }, (_, p) => 15 - 2 * p);
      const k = randn(positions.length * kvWidth, 3);
      const v = randn(positions.length * kvWidth, 1e-4);
      // rounding edges: F16's largest finite and overflow, infinities, NaN, a tie, subnormals and signed zero
      k.set([65504, 65519, 65520, -7e4, Infinity, -Infinity, NaN, -NaN, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 3e-6, -6.1e-5, 2 ** -25, -0, 0, 1e-8], 0);
      // a Q8_0 block's scale comes from its largest magnitude, so its edges are the finite ones
      const keys = type === "q8_0" ? k.map((x) => (Number.isFinite(x) ? x : 0)) : k;
      const halves = kvRowHalves(kvWidth, type) * 16;
      const expected = { keys: new Uint16Array(halves), values: new Uint16Array(halves), rows, type };
      scalar.storeKv(expected, keys, v, positions, kvWidth);
      const got = { keys: wasm.halfStorage.allocate(halves), values: wasm.halfStorage.allocate(halves), rows, type };
      got.keys.fill(0);
      got.values.fill(0);
      wasm.storeKv(got, keys, v, positions, kvWidth);
      assert.deepEqual(Array.from(got.keys), Array.from(expected.keys), "keys differ");
      assert.deepEqual(Array.from(got.values), Array.from(expected.values), "values differ");
      wasm.halfStorage.release(got.keys);
      wasm.halfStorage.release(got.values);
    });
  }

  for (const [heads, kvHeads, headDim] of [[8, 2, 64], [12, 12, 32]]) {
    it(`several sequences attend in one call as each does alone, bit for bit: paged, contiguous and plain caches, one token or many (${heads}/${kvHeads} heads of ${headDim})`, () => {
      const kvWidth = kvHeads * headDim;
      const shape = { heads, kvHeads, headDim, scale: Math.fround(1 / Math.sqrt(headDim)) };
      // three sequences through block tables of one arena, as a paged pool keeps them, each with its own rows
      const arenaRows = 40 * 16;
      const arena = { keys: wasm.halfStorage.allocate(arenaRows * kvWidth), values: wasm.halfStorage.allocate(arenaRows * kvWidth) };
      const paged = [[3, 1], [130, 1], [57, 5]].map(([start, T], s) => {
        const count = start + T;
        const table = Array.from({ length: Math.ceil(count / 16) }, (_, b) => 39 - s - 3 * b);
        const rows = Int32Array.from({ length: count }, (_, p) => table[p >> 4] * 16 + (p & 15));
        return { start, T, kv: { ...arena, rows } };
      });
      const contiguous = { keys: wasm.halfStorage.allocate(200 * kvWidth), values: wasm.halfStorage.allocate(200 * kvWidth) };
      const plain = { keys: new Uint16Array(200 * kvWidth), values: new Uint16Array(200 * kvWidth) };
      const sequences = [...paged, { start: 90, T: 1, kv: contiguous }];
      sequences.forEach(({ start, T, kv }, s) => {
        const all = Array.from({ length: start + T }, (_, i) => i);
        wasm.storeKv(kv, randn((start + T) * kvWidth, 20 + s), randn((start + T) * kvWidth, 30 + s), all, kvWidth);
      });
      const check = (batch: { start: number; T: number; kv: LayerKv }[]): void => {
        const positions = batch.flatMap(({ start, T }) => Array.from({ length: T }, (_, t) => start + t));
        const q = randn(positions.length * heads * headDim, 9);
        let row = 0;
        const segments = batch.map(({ T, kv }) => ({ start: (row += T) - T, length: T, kv }));
        const got = wasm.attendSequences(q, segments, positions, shape);
        for (const { start, length, kv } of segments) {
          const rows = q.subarray(start * heads * headDim, (start + length) * heads * headDim);
          const alone = scalar.attention(rows, kv, positions.slice(start, start + length), shape);
          assert.ok(alone.every((x, i) => Object.is(x, got[start * heads * headDim + i])), `sequence at row ${start} differs`);
        }
      };
      check(sequences);
      // a cache the kernels cannot read (plain arrays) among them: the batch is taken a sequence at a time
      plain.keys.set(contiguous.keys);
      plain.values.set(contiguous.values);
      check([paged[0], { start: 90, T: 1, kv: plain }, paged[2]]);
      for (const array of [arena.keys, arena.values, contiguous.keys, contiguous.values]) wasm.halfStorage.release(array);
    });
  }

  for (const [heads, kvHeads, headDim, ordering, dims, window] of [[8, 2, 64, "normal", 64, 0], [12, 12, 32, "neox", 32, 0], [14, 2, 64, "neox", 64, 6], [4, 2, 32, "normal", 20, 0]] as const) {
    it(`RoPE, the KV store and attention in one call are the three composed, bit for bit: outputs and cache rows (${heads}/${kvHeads} heads of ${headDim}, ${ordering}, ${dims} rotated${window ? `, window ${window}` : ""})`, () => {
      const kvWidth = kvHeads * headDim;
      const shape = { heads, kvHeads, headDim, scale: Math.fround(1 / Math.sqrt(headDim)), window: window || undefined };
      const rope = { ordering, dims, freqBase: 10000, freqScale: 1 };
      const arenaRows = 24 * 16;
      // the same caches for both sides: the kernels' (resident) and the scalar twin's (plain arrays)
      const arena = { keys: wasm.halfStorage.allocate(arenaRows * kvWidth), values: wasm.halfStorage.allocate(arenaRows * kvWidth) };
      const twinArena = { keys: new Uint16Array(arenaRows * kvWidth), values: new Uint16Array(arenaRows * kvWidth) };
      const contiguous = { keys: wasm.halfStorage.allocate(120 * kvWidth), values: wasm.halfStorage.allocate(120 * kvWidth) };
      const twinContiguous = { keys: new Uint16Array(120 * kvWidth), values: new Uint16Array(120 * kvWidth) };
      for (const array of [arena.keys, arena.values, contiguous.keys, contiguous.values]) array.fill(0);
      const sequences: { start: number; T: number; kv: LayerKv; twin: LayerKv }[] = [[3, 1], [70, 3], [40, 1]].map(([start, T], s) => {
        const count = start + T;
        const table = Array.from({ length: Math.ceil(count / 16) }, (_, b) => 23 - s - 3 * b);
        const rows = Int32Array.from({ length: count }, (_, p) => table[p >> 4] * 16 + (p & 15));
        return { start, T, kv: { ...arena, rows }, twin: { ...twinArena, rows } };
      });
      sequences.push({ start: 90, T: 1, kv: contiguous, twin: twinContiguous });
      for (const [s, { start, kv, twin }] of sequences.entries()) {
        const all = Array.from({ length: start }, (_, i) => i);
        const [k, v] = [randn(start * kvWidth, 20 + s), randn(start * kvWidth, 30 + s)];
        scalar.storeKv(twin, k, v, all, kvWidth);
        wasm.storeKv(kv, k, v, all, kvWidth);
      }
      const positions = sequences.flatMap(({ start, T }) => Array.from({ length: T }, (_, t) => start + t));
      let row = 0;
      const segments = sequences.map(({ T, kv }) => ({ start: (row += T) - T, length: T, kv }));
      const twinSegments = segments.map((segment, s) => ({ ...segment, kv: sequences[s].twin }));
      const tokens = positions.length;
      const [q, k, v] = [randn(tokens * heads * headDim, 2), randn(tokens * kvWidth, 3), randn(tokens * kvWidth, 4)];
      const got = wasm.ropeStoreAttend(q.slice(), k.slice(), v.slice(), segments, positions, shape, rope);
      const release = (): void => {
        for (const array of [arena.keys, arena.values, contiguous.keys, contiguous.values]) wasm.halfStorage.release(array);
      };
      if (!kernelsUseRelaxedSimd()) {
        // the attention kernel needs relaxed SIMD's FMA: the caller composes the three
        assert.equal(got, undefined);
        return release();
      }
      scalar.rope(q, heads, headDim, positions, rope);
      scalar.rope(k, kvHeads, headDim, positions, rope);
      for (const { start, length, kv } of twinSegments) {
        scalar.storeKv(kv, k.subarray(start * kvWidth, (start + length) * kvWidth), v.subarray(start * kvWidth, (start + length) * kvWidth), positions.slice(start, start + length), kvWidth);
      }
      const expected = scalar.attendSequences(q, twinSegments, positions, shape);
      assert.ok(got !== undefined && got.length === expected.length && got.every((x, i) => Object.is(x, expected[i])), "attention differs");
      assert.deepEqual(Array.from(arena.keys), Array.from(twinArena.keys), "paged keys differ");
      assert.deepEqual(Array.from(arena.values), Array.from(twinArena.values), "paged values differ");
      assert.deepEqual(Array.from(contiguous.keys), Array.from(twinContiguous.keys), "keys differ");
      assert.deepEqual(Array.from(contiguous.values), Array.from(twinContiguous.values), "values differ");
      release();
    });
  }

  for (const [T, window, softcap, kvHeads] of [[1, 5, 0, 2], [24, 11, 0, 2], [1, 0, 2, 2], [24, 0, 2, 2], [24, 7, 1.5, 2], [80, 11, 0, 2], [80, 7, 1.5, 2], [1, 5, 1.5, 4]]) {
    it(`attention with a sliding window (${window || "none"}) and soft-capping (${softcap || "none"}) is bit-identical and is what it says (${T} token${T > 1 ? "s" : ""}, 4/${kvHeads} heads)`, () => {
      const [heads, headDim, start] = [4, 32, 45];
      const kvWidth = kvHeads * headDim;
      const count = start + T;
      const k = randn(count * kvWidth);
      const v = randn(count * kvWidth);
      const all = Array.from({ length: count }, (_, i) => i);
      const plain = { keys: new Uint16Array(count * kvWidth), values: new Uint16Array(count * kvWidth) };
      scalar.storeKv(plain, k, v, all, kvWidth);
      const resident = { keys: wasm.halfStorage.allocate(count * kvWidth), values: wasm.halfStorage.allocate(count * kvWidth) };
      resident.keys.set(plain.keys);
      resident.values.set(plain.values);
      const positions = Array.from({ length: T }, (_, t) => start + t);
      const q = randn(T * heads * headDim);
      const shape = { heads, kvHeads, headDim, scale: Math.fround(1 / Math.sqrt(headDim)), window: window || undefined, softcap: softcap || undefined };
      const expected = scalar.attention(q, plain, positions, shape);
      const got = wasm.attention(q, resident, positions, shape);
      assert.ok(got.every((x, i) => Object.is(x, expected[i])), "attention differs");
      // the mathematical value, in f64 over the F16 cache: only keys in the window, scores cap·tanh(s/cap)
      let worst = 0;
      for (let t = 0; t < T; t++) {
        const p = positions[t];
        const first = window ? Math.max(0, p + 1 - window) : 0;
        for (let h = 0; h < heads; h++) {
          const g = Math.floor(h / (heads / kvHeads)) * headDim;
          const scores: number[] = [];
          for (let j = first; j <= p; j++) {
            let dot = 0;
            for (let d = 0; d < headDim; d++) dot += q[(t * heads + h) * headDim + d] * HALF_TO_FLOAT[plain.keys[j * kvWidth + g + d]];
            scores.push((softcap ? softcap * Math.tanh(dot / softcap) : dot) * shape.scale);
          }
          const max = Math.max(...scores);
          const weights = scores.map((s) => Math.exp(s - max));
          const total = weights.reduce((a, b) => a + b, 0);
          for (let d = 0; d < headDim; d++) {
            let value = 0;
            weights.forEach((w, i) => (value += (w / total) * HALF_TO_FLOAT[plain.values[(first + i) * kvWidth + g + d]]));
            worst = Math.max(worst, Math.abs(value - expected[(t * heads + h) * headDim + d]));
          }
        }
      }
      assert.ok(worst < 5e-3, `max |Δ| from the exact attention ${worst}`);
      wasm.halfStorage.release(resident.keys);
      wasm.halfStorage.release(resident.values);
    });
  }

  for (const [headDim, T, start, paged] of [[32, 1, 37, false], [64, 1, 300, true], [64, 24, 100, false], [32, 40, 9, true]] as const) {
    it(`attention over a q8_0 cache is bit-identical (head size ${headDim}, ${T} token${T > 1 ? "s" : ""} from ${start}${paged ? ", paged" : ""})`, () => {
      const heads = 4;
      const kvHeads = 2;
      const kvWidth = kvHeads * headDim;
      const count = start + T;
      const rowHalves = kvRowHalves(kvWidth, "q8_0");
      // paged: rows scattered in reverse, so the row map matters
      const rows = paged ? Int32Array.from({ length: count }, (_, p) => count - 1 - p) : undefined;
      const all = Array.from({ length: count }, (_, i) => i);
      const k = randn(count * kvWidth);
      const v = randn(count * kvWidth);
      const plain = { keys: new Uint16Array(count * rowHalves), values: new Uint16Array(count * rowHalves), rows, type: "q8_0" as const };
      scalar.storeKv(plain, k, v, all, kvWidth);
      const resident = { keys: wasm.halfStorage.allocate(count * rowHalves), values: wasm.halfStorage.allocate(count * rowHalves), rows, type: "q8_0" as const };
      wasm.storeKv(resident, k, v, all, kvWidth);
      assert.deepEqual(resident.keys, plain.keys);
      // the rows are llama.cpp's Q8_0 blocks of each position's values
      const expectedRow = new Uint8Array(rowHalves * 2);
      quantFormat(GgmlType.Q8_0).quantizeRow(v, 5 * kvWidth, expectedRow, 0, kvWidth);
      const row5 = rows ? rows[5] : 5;
      assert.deepEqual(new Uint8Array(plain.values.buffer, row5 * rowHalves * 2, rowHalves * 2), expectedRow);
      const positions = Array.from({ length: T }, (_, t) => start + t);
      const q = randn(T * heads * headDim);
      const shape = { heads, kvHeads, headDim, scale: Math.fround(1 / Math.sqrt(headDim)) };
      const expected = scalar.attention(q, plain, positions, shape);
      const got = wasm.attention(q, resident, positions, shape);
      assert.ok(got.every((x, i) => Object.is(x, expected[i])), "attention differs");
      // and it is attention: close to the same cache kept in F16 (Q8_0 moves each unit-normal value by
      // up to amax/254, about 0.01)
      const f16 = { keys: new Uint16Array(count * kvWidth), values: new Uint16Array(count * kvWidth) };
      scalar.storeKv(f16, k, v, all, kvWidth);
      const reference = scalar.attention(q, f16, positions, shape);
      const worst = expected.reduce((m, x, i) => Math.max(m, Math.abs(x - reference[i])), 0);
      assert.ok(worst > 0 && worst < 0.03, `q8_0 vs F16 cache: max |Δ| ${worst}`);
      wasm.halfStorage.release(resident.keys);
      wasm.halfStorage.release(resident.values);
    });
  }

  it("Q8_0 activation quantization writes the scalar twin's bytes, halves rounded away from zero", () => {
    const kernels = new KernelInstance();
    const n = 128;
    const x = randn(n, 3);
    // block 1: amax 127 makes d = 1, so k + 0.5 values hit roundf's ties exactly
    for (let i = 32; i < 64; i++) x[i] = (i % 2 === 0 ? 1 : -1) * ((i % 7) + 0.5);
    x[32] = 127;
    // the largest floats below a half, which a rounding that adds 0.5 carries up to the next integer
    x[33] = Math.fround(0.5 - 2 ** -25);
    x[35] = -Math.fround(0.5 - 2 ** -25);
    x[37] = Math.fround(2.5 - 2 ** -22);
    x.fill(0, 64, 96); // block 2: all zero
    assertSameQuantization(kernels, kernels.quantizeQ8_0, GgmlType.Q8_0, x);
  });

  it("a query rounded through Q8_0 blocks (for a Q8_0 cache) is the scalar twin's roundQueryForKeys, bit for bit", () => {
    const kernels = new KernelInstance();
    const n = 160;
    const x = randn(n, 4);
    for (let i = 32; i < 64; i++) x[i] = (i % 2 === 0 ? 1 : -1) * ((i % 7) + 0.5); // roundf's ties, d = 1
    x[32] = 127;
    x[33] = Math.fround(0.5 - 2 ** -25);
    x.fill(0, 64, 96); // a block of zeros
    x[70] = -0;
    for (let i = 96; i < 128; i++) x[i] = (i - 111) * 3e-6; // a scale in F16's subnormal range
    x[130] = 6e4; // one large value: the rest of its block rounds to 0
    const at = kernels.allocate(n * 4);
    new Float32Array(kernels.heap.buffer).set(x, at / 4);
    kernels.roundThroughQ8_0(at, n);
    const got = new Float32Array(kernels.heap.buffer, at, n);
    const expected = roundQueryForKeys(x, "q8_0");
    assert.ok(got.every((v, i) => Object.is(v, expected[i])), "rounded values differ");
    assert.ok(!expected.every((v, i) => v === x[i]), "the rounding changes values");
  });

  it("Q8_K activation quantization writes the scalar twin's bytes", () => {
    const kernels = new KernelInstance();
    const n = 1024;
    const x = randn(n, 2);
    x[300] = -9; // block 1's value of largest magnitude is negative …
    x[301] = 9; // … and tied with a later positive one: the first wins
    x.fill(0, 512, 768); // block 2: all zero
    for (let i = 768; i < 1024; i++) x[i] = ((i % 5) - 2) * 0.5; // exact ties for nearest_int
    assertSameQuantization(kernels, kernels.quantizeQ8_K, GgmlType.Q8_K, x);
  });

  for (const [width, rows] of [[64, 1], [2048, 3], [6, 2], [2048, 300]]) {
    it(`RMSNorm is bit-identical (${rows} row${rows > 1 ? "s" : ""} of ${width})`, () => {
      const x = randn(width * rows, 3);
      x.fill(0, 0, Math.min(width, 4)); // zeros, and a tail past the vector lanes when width is not a multiple of 4
      const gain = randn(width, 0.2).map((g) => 1 + g);
      const eps = Math.fround(1e-5);
      const expected = scalar.rmsNorm(x, gain, eps, width);
      const got = wasm.rmsNorm(x, gain, eps, width);
      assert.ok(got.every((v, i) => Object.is(v, expected[i])), "rmsNorm differs");
    });
  }

  it("the residual add is the scalar twin's f32 sums, bit for bit, tails and edges included", () => {
    for (const n of [1, 7, 16, 2307, 16384]) {
      const a = randn(n, 3);
      const b = randn(n, 1e-3);
      a.set([Infinity, -0, 1e-45].slice(0, n));
      b.set([-Infinity, 0, 1e-45].slice(0, n));
      const expected = a.slice();
      const got = a.slice();
      scalar.addInPlace(expected, b);
      wasm.addInPlace(got, b);
      assert.ok(got.every((v, i) => Object.is(v, expected[i])), `add differs at ${n} elements`);
    }
  });
  it("SwiGLU (ggml's vectorised exp) is bit-identical, including far tails", () => {
    const gate = Float32Array.from([...randn(4096, 4), -200, -120, -90, -88, 88, 90, 200, 0, -0, 1e-30, -1e-30, 30]);
    const up = randn(gate.length);
    const expected = scalar.swiglu(gate, up);
    const got = wasm.swiglu(gate, up);
    assert.ok(got.every((v, i) => Object.is(v, expected[i])), "swiglu differs");
  });
  it("GeGLU (ggml's F16 GELU table) and logit soft-capping are bit-identical, across threads and edges", () => {
    // 300 000 elements: several units on each thread; ±10 and beyond, F16's range edges, signed zeros,
    // values whose F16 is subnormal
    const gate = Float32Array.from([...randn(300_000, 5), ...randn(20_000, 3e-5), -10, 10, -10.001, 9.999, 70000, -70000, 0, -0, 6e-8, NaN, Infinity, -Infinity]);
    const up = randn(gate.length);
    const expected = scalar.geglu(gate, up);
    const got = wasm.geglu(gate, up);
    assert.ok(got.every((v, i) => Object.is(v, expected[i])), "geglu differs");
    for (const cap of [30, 50]) {
      const logits = Float32Array.from([...randn(300_000, 40), 0, -0, 1e-30, 1e6, -1e6, Infinity, -Infinity]);
      const a = logits.slice();
      const b = logits.slice();
      scalar.softcapInPlace(a, cap);
      wasm.softcapInPlace(b, cap);
      assert.ok(a.every((v, i) => Object.is(v, b[i])), `softcap ${cap} differs`);
    }
  });
  it("GeGLU gives the GELU table's entry for every F16 value", () => {
    // The kernel's value depends on x only through x's F16 rounding (and the ±10 limits, checked above), so
    // every F16 value stands for every input. Each comes as a group of four copies (one SIMD group).
    const gate = new Float32Array(4 * 65536);
    for (let h = 0; h < 65536; h++) gate.fill(HALF_TO_FLOAT[h], 4 * h, 4 * h + 4);
    const up = randn(gate.length);
    const expected = scalar.geglu(gate, up);
    const got = wasm.geglu(gate, up);
    const wrong = Array.from(gate.keys()).filter((i) => !Object.is(got[i], expected[i]));
    assert.deepEqual(wrong.slice(0, 5).map((i) => [gate[i], got[i], expected[i]]), [], "geglu differs");
  });
  it("soft-capping's fast tanh rounds as Math.tanh does, where its own check hands lanes over and where it does not", () => {
    // every f32 around the limit below which tanh gives its argument (2^-12), where tanh reaches 1 in f32,
    // and a million values over the range where the fast path's check decides
    const every = (from: number, to: number): number[] => {
      const bits = new Uint32Array(Float32Array.of(from).buffer);
      const out: number[] = [];
      for (let k = bits[0]; ; k++) {
        const v = new Float32Array(new Uint32Array([k]).buffer)[0];
        if (v > to) return out;
        out.push(v, -v);
      }
    };
    const x = Float32Array.from([...every(0.0002439, 0.0002443), ...every(8.999, 9.02), ...randn(1_000_000, 3), ...randn(100_000, 1e-3)]);
    const a = x.slice();
    const b = x.slice();
    scalar.softcapInPlace(a, 1);
    wasm.softcapInPlace(b, 1);
    assert.ok(a.every((v, i) => Object.is(v, b[i])), "tanh differs");
  });

  const floatShapes = [[32, 1, 1], [256, 33, 3], [1024, 7, 2], [100, 5, 2], [2048, 64, 4]]; // 100: a tail past the 32 lanes
  for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_1, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K]) {
    it(`${ggmlTypeName(type)} matmul is bit-identical, on its very first call and after`, () => {
      const blockSize = quantFormat(type).blockSize;
      const shapes = blockSize === 1 ? floatShapes : blockSize === 256 ? [[256, 1, 1], [256, 33, 3], [1024, 7, 2]] : [[32, 1, 1], [256, 33, 3], [1024, 7, 2]];
      // Q8_0 row counts that are not a multiple of 16 stay on the row kernel, in vec_dot's order (the
      // interleaved kernel is checked below): rows split across threads, single tokens and a batch long
      // enough that its quantization splits too; weights of 1e-5 have subnormal f16 scales
      if (type === GgmlType.Q8_0) shapes.push([32, 2, 1], [512, 28, 1], [256, 34, 3], [2048, 30, 40], [256, 8, 1, 1e-5], [256, 8, 5, 1e-5], [224, 6, 1], [224, 6, 3]);
      for (const [cols, rows, tokens, magnitude = 0.3] of shapes) {
        const w = weightOf(type, randn(cols * rows, magnitude), cols);
        const x = randn(cols * tokens, 2);
        // exact halves after scaling, zeros and a block of all zeros exercise roundf's edges
        x.set([0.5, -0.5, 1.5, -2.5, 0, -0], 0);
        if (cols >= 64) x.fill(0, 32, 64);
        const expected = scalar.matmul(w, x, tokens);
        for (let call = 0; call < 3; call++) {
          const got = wasm.matmul(w, x, tokens);
          assert.ok(got.every((v, i) => Object.is(v, expected[i])), `${cols}×${rows}, call ${call}`);
        }
      }
    });
  }
  it("products of one input (Q, K, V; gate and up) match one product at a time, shared activations or not", () => {
    const cols = 512;
    const x = randn(cols * 5, 2);
    // weights of one kernel are repacked back to back on first use and then go as one matrix
    const adjoining = [[GgmlType.Q8_0, GgmlType.Q8_0], [GgmlType.Q4_K, GgmlType.Q4_K], [GgmlType.Q4_0, GgmlType.Q4_0, GgmlType.Q4_0]];
    for (const types of [[GgmlType.Q4_K, GgmlType.Q4_K, GgmlType.Q6_K], [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K], ...adjoining]) {
      const ws = types.map((type, i) => weightOf(type, randn(cols * (type === GgmlType.Q4_0 || type === GgmlType.Q8_0 ? 32 >> Math.min(i, 1) : 8 + 4 * i), 0.3), cols));
      for (const tokens of [1, 5]) {
        const got = wasm.matmuls(ws, x, tokens);
        ws.forEach((w, i) => {
          // one product at a time is checked against its twin above (vec_dot or blockwise order by type)
          const expected = wasm.matmul(w, x, tokens);
          assert.ok(got[i].length === expected.length && got[i].every((v, j) => Object.is(v, expected[j])), `${types.map(ggmlTypeName).join("+")} #${i}, ${tokens} tokens`);
        });
      }
    }
  });
  it("a fused gated feed-forward layer equals matmuls, then swiglu or geglu, then matmul, bit for bit", () => {
    const cols = 256;
    const width = 512;
    // up to 16 tokens the layer runs as one run_stages program (on one thread too), past that a dispatch a
    // kernel; 130 tokens cross a chunk boundary of that path
    const x = randn(cols * 130, 2);
    const single = new WasmBackend(1);
    for (const [gateType, downType] of [[GgmlType.Q4_0, GgmlType.Q4_0], [GgmlType.Q8_0, GgmlType.Q8_0], [GgmlType.Q4_K, GgmlType.Q6_K]]) {
      const gate = weightOf(gateType, randn(cols * width, 0.3), cols);
      const up = weightOf(gateType, randn(cols * width, 0.3), cols);
      const down = weightOf(downType, randn(width * cols, 0.3), width);
      for (const activation of ["silu", "gelu"] as const) {
        for (const tokens of [1, 7, 16, 17, 130]) {
          const got = wasm.gatedFeedForward(gate, up, down, activation, x, tokens);
          // without relaxed SIMD, SiLU stays with the scalar twin and the layer is composed by the caller
          if (activation === "silu" && !kernelsUseRelaxedSimd()) {
            assert.equal(got, undefined);
            continue;
          }
          const [g, u] = wasm.matmuls([gate, up], x, tokens);
          const expected = wasm.matmul(down, activation === "gelu" ? wasm.geglu(g, u) : wasm.swiglu(g, u), tokens);
          const label = `${ggmlTypeName(gateType)}/${ggmlTypeName(downType)} ${activation}, ${tokens} tokens`;
          assert.ok(got !== undefined && got.length === expected.length && got.every((v, j) => Object.is(v, expected[j])), label);
          if (tokens <= 16) {
            const alone = single.gatedFeedForward(gate, up, down, activation, x, tokens);
            assert.ok(alone !== undefined && alone.every((v, j) => Object.is(v, expected[j])), `${label}, one thread`);
          }
        }
      }
    }
    single.dispose();
  });
  for (const type of [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K]) {
    it(`${ggmlTypeName(type)} interleaved matmul (rows in groups) is bit-identical to the blockwise twin, on its first call and after`, () => {
      const format = quantFormat(type);
      const activation = quantFormat(format.dotType);
      // Q6_K groups four rows and Q4_K eight, whose batches go three tokens a pass, ending in two or one
      // (5, 9, 40 and 3 tokens here); the last batch is long enough that quantizing it also splits across
      // threads; weights of 1e-5 have subnormal f16 scales. Q4_0 and Q8_0 group sixteen rows; Q4_0 batches
      // of 16 tokens or more (SPLIT_FROM_TOKENS) split the nibbles into each thread's scratch first (ending in
      // passes of three, two and four tokens): 15, 16 and 17 tokens around that threshold, 40, and 48 to 50.
      const shapes = type === GgmlType.Q4_K
        ? [[256, 8, 1], [512, 24, 1], [256, 8, 5], [1024, 16, 2], [2048, 16, 9], [2048, 8, 40], [512, 16, 1, 1e-5], [256, 8, 3, 1e-5]]
        : format.blockSize === 256
        ? [[256, 4, 1], [512, 28, 1], [256, 8, 5], [1024, 12, 2], [2048, 16, 9], [2048, 8, 40], [512, 16, 1, 1e-5]]
        : [[32, 16, 1], [512, 48, 1], [256, 32, 5], [1024, 16, 2], [2048, 16, 9], [2048, 32, 40], [512, 16, 1, 1e-5], [256, 16, 4, 1e-5], [512, 64, 48], [256, 32, 50], [512, 64, 49], [256, 16, 15], [512, 32, 16], [256, 16, 17]];
      const check = (w: Weight, tokens: number, label: string): void => {
        const [cols, rows] = [w.cols, w.rows];
        const x = randn(cols * tokens, 2);
        x.set([0.5, -0.5, 1.5, -2.5, 0, -0], 0);
        if (cols >= 64) x.fill(0, 32, 64);
        const quantized = new Uint8Array(rowBytes(activation, cols) * tokens);
        for (let t = 0; t < tokens; t++) activation.quantizeRow(x, t * cols, quantized, t * rowBytes(activation, cols), cols);
        const expected = new Float32Array(tokens * rows);
        for (let t = 0; t < tokens; t++) {
          for (let r = 0; r < rows; r++) {
            expected[t * rows + r] = format.blockwiseDot!(cols, w.data, r * rowBytes(format, cols), quantized, t * rowBytes(activation, cols));
          }
        }
        for (let call = 0; call < 3; call++) {
          const got = wasm.matmul(w, x, tokens);
          assert.ok(got.every((v, i) => Object.is(v, expected[i])), `${label}, call ${call}`);
        }
      };
      for (const [cols, rows, tokens, magnitude = 0.3] of shapes) check(weightOf(type, randn(cols * rows, magnitude), cols), tokens, `${cols}×${rows}×${tokens}`);
      if (type === GgmlType.Q8_0) {
        // quants of −128, which ggml's quantizer never writes but a file may hold, against either sign
        const w = weightOf(type, randn(256 * 16, 0.3), 256);
        for (let at = 0; at < w.data.length; at += 34) for (let j = 2 + (at % 5); j < 34; j += 3) w.data[at + j] = 0x80;
        for (const tokens of [1, 5]) check(w, tokens, `−128 quants, ${tokens} tokens`);
      }
    });
  }
});
