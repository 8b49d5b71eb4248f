import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AttentionSegment, Backend, DecoderLayerWeights, GateActivation, LayerKv } from "../src/backend/backend.js";
import { kernelsUseRelaxedSimd } from "../src/backend/wasm/kernels.js";
import { WasmBackend } from "../src/backend/wasm/wasm-backend.js";
import { GgmlType, ggmlTypeName } from "../src/gguf/index.js";
import { GatedFeedForward, RmsNorm, SelfAttention } from "../src/nn/blocks.js";
import { DecoderBlock, forwardBlocks } from "../src/nn/decoder-block.js";
import { quantFormat, rowBytes } from "../src/quant/index.js";
import { NormalSource } from "../src/synth/normal.js";
import { Weight } from "../src/tensor/weight.js";

const normal = new NormalSource(77);
const randn = (n: number, std = 1): Float32Array => normal.fill(new Float32Array(n), std);

function weightOf(name: string, type: GgmlType, values: Float32Array, cols: number): Weight {
  const f = quantFormat(type);
  const rows = values.length / cols;
  const data = new Uint8Array(rowBytes(f, cols) * rows);
  for (let r = 0; r < rows; r++) f.quantizeRow(values, r * cols, data, r * rowBytes(f, cols), cols);
  return new Weight(name, type, [cols, rows], data);
}

const [d, heads, kvHeads, headDim, width] = [256, 4, 2, 64, 512];
const [qWidth, kvWidth] = [heads * headDim, kvHeads * headDim];
const eps = Math.fround(1e-6);

interface LayerCase {
  /** The type of the other products, then of V and down (llama.cpp's Q4_K_M gives those two Q6_K). */
  types: [GgmlType, GgmlType];
  bias?: boolean;
  headNorm?: boolean;
  activation: GateActivation;
  window?: number;
  /** Gemma's: a query scale after RoPE, norms of both outputs, soft-capped scores. */
  gemma?: boolean;
}

/** One layer's weights, random, as a DecoderLayerWeights and as the parts a DecoderBlock composes. */
function layerOf({ types: [main, other], bias, headNorm, activation, gemma }: LayerCase): DecoderLayerWeights {
  const gain = (n: number): Float32Array => Float32Array.from(randn(n, 0.2), (x) => 1 + x);
  return {
    attentionNorm: { gain: gain(d), eps },
    q: weightOf("q", main, randn(d * qWidth, 0.1), d),
    k: weightOf("k", main, randn(d * kvWidth, 0.1), d),
    v: weightOf("v", other, randn(d * kvWidth, 0.1), d),
    bias: bias ? { q: randn(qWidth, 0.5), k: randn(kvWidth, 0.5), v: randn(kvWidth, 0.5) } : undefined,
    headNorm: headNorm ? { q: gain(headDim), k: gain(headDim), eps } : undefined,
    queryScale: gemma ? Math.fround(1 / Math.sqrt(headDim)) : undefined,
    postNorms: gemma ? { attention: { gain: gain(d), eps }, ffn: { gain: gain(d), eps } } : undefined,
    output: weightOf("o", main, randn(qWidth * d, 0.1), qWidth),
    ffnNorm: { gain: gain(d), eps },
    gate: weightOf("gate", main, randn(d * width, 0.1), d),
    up: weightOf("up", main, randn(d * width, 0.1), d),
    down: weightOf("down", other, randn(width * d, 0.05), width),
    activation,
  };
}

/** The layer as a DecoderBlock over `backend`, its norms' gains and its biases those of `layer`. */
function blockOf(backend: Backend, layer: DecoderLayerWeights, window?: number): DecoderBlock {
  const norm = (gain: Float32Array): RmsNorm => new RmsNorm(backend, new Weight("norm", GgmlType.F32, [gain.length], new Uint8Array(gain.slice().buffer)), eps);
  const gemma = layer.queryScale !== undefined;
  const shape = { heads, kvHeads, headDim, scale: gemma ? 1 : Math.fround(1 / Math.sqrt(headDim)), window, softcap: gemma ? 3 : undefined };
  const { q, k, v, output, bias, headNorm, queryScale } = layer;
  return new DecoderBlock(backend, {
    attentionNorm: norm(layer.attentionNorm.gain),
    attention: new SelfAttention(backend, { projection: { q, k, v }, output, bias, headNorm, queryScale }, shape, { ordering: "neox", dims: headDim, freqBase: 10000, freqScale: 1 }),
    ffnNorm: norm(layer.ffnNorm.gain),
    ffn: new GatedFeedForward(backend, { gate: layer.gate, up: layer.up, down: layer.down }, layer.activation),
    postNorms: layer.postNorms && { attention: norm(layer.postNorms.attention.gain), ffn: norm(layer.postNorms.ffn.gain) },
  });
}

describe("decoder layers in one piece (Backend.decoderLayers)", () => {
  const wasm = new WasmBackend();
  // the same backend without the one-piece path: the caller composes the layer from its operations
  const composed = Object.create(wasm, { decoderLayers: { value: undefined } }) as WasmBackend;
  const single = new WasmBackend(1);
  const cases: LayerCase[] = [
    { types: [GgmlType.Q4_0, GgmlType.Q4_0], activation: "silu" },
    { types: [GgmlType.Q4_0, GgmlType.Q4_0], bias: true, activation: "silu", window: 9 },
    { types: [GgmlType.Q8_0, GgmlType.Q8_0], headNorm: true, activation: "silu" },
    { types: [GgmlType.Q4_K, GgmlType.Q6_K], bias: true, headNorm: true, activation: "gelu" },
    { types: [GgmlType.Q4_0, GgmlType.Q4_0], activation: "gelu", window: 9, gemma: true },
    { types: [GgmlType.Q4_K, GgmlType.Q6_K], headNorm: true, activation: "gelu", gemma: true },
  ];
  /**
   * Runs the layers through decoderLayers and, as blocks over the backend without it, one by one, over the
   * same input and the same earlier cache rows (a paged arena each, five blocks a sequence in reverse
   * order); the outputs and every cache row must agree, bit for bit.
   */
  function compare(backend: WasmBackend, layers: readonly { layer: DecoderLayerWeights; window?: number }[], sequences: readonly (readonly [number, number])[], label: string): void {
    const tokens = sequences.reduce((sum, [, T]) => sum + T, 0);
    // each sequence's blocks, five or as many as its longest position needs
    const blocksEach = Math.max(5, ...sequences.map(([start, T]) => Math.ceil((start + T) / 16)));
    const arenaRows = 16 * Math.max(16, blocksEach * sequences.length);
    const arena = (): LayerKv => ({ keys: backend.halfStorage.allocate(arenaRows * kvWidth), values: backend.halfStorage.allocate(arenaRows * kvWidth) });
    const [mine, theirs] = [layers.map(arena), layers.map(arena)];
    const all = Array.from({ length: arenaRows }, (_, i) => i);
    layers.forEach((_, i) => {
      const history = [randn(arenaRows * kvWidth), randn(arenaRows * kvWidth)];
      for (const kv of [mine[i], theirs[i]]) backend.storeKv(kv, history[0], history[1], all, kvWidth);
    });
    const positions = sequences.flatMap(([start, T]) => Array.from({ length: T }, (_, t) => start + t));
    const firstRows = sequences.map((_, s) => sequences.slice(0, s).reduce((sum, [, T]) => sum + T, 0));
    const tables = sequences.map(([start, T], s) => Int32Array.from({ length: start + T }, (_, p) => (s * blocksEach + blocksEach - 1 - (p >> 4)) * 16 + (p & 15)));
    const segments = (kv: LayerKv): AttentionSegment[] => sequences.map(([, T], s) => ({ start: firstRows[s], length: T, kv: { ...kv, rows: tables[s] } }));
    const blocks = layers.map(({ layer, window }) => blockOf(composed, layer, window));
    const x = randn(tokens * d, 1);
    const calls = blocks.map((block, i) => ({ weights: layers[i].layer, segments: segments(mine[i]), shape: block.parts.attention.shape, rope: block.parts.attention.rope }));
    const got = backend.decoderLayers(calls, x, positions);
    const expected = forwardBlocks(composed, blocks, x.slice(), tokens, positions, (i) => segments(theirs[i]));
    const where = `${label}: ${sequences.map(([s, T]) => `${T} at ${s}`).join(", ")}, ${backend.threads} thread(s)`;
    if (tokens > 128 || !kernelsUseRelaxedSimd()) {
      assert.equal(got, undefined, where);
    } else {
      assert.ok(got !== undefined && got.length === expected.length, where);
      const differ = got.findIndex((v, i) => !Object.is(v, expected[i]));
      assert.equal(differ, -1, `${where}: output ${differ} is ${got[differ]}, composed ${expected[differ]}`);
      layers.forEach((_, i) => {
        assert.deepEqual(Array.from(mine[i].keys), Array.from(theirs[i].keys), `${where}: layer ${i}'s keys`);
        assert.deepEqual(Array.from(mine[i].values), Array.from(theirs[i].values), `${where}: layer ${i}'s values`);
      });
    }
    for (const kv of [...mine, ...theirs]) for (const array of [kv.keys, kv.values]) backend.halfStorage.release(array);
  }

  // sequences as (first position, tokens): 128 tokens is the most one program takes, 129 goes composed
  const batches: (readonly [number, number])[][] = [[[5, 1]], [[40, 3], [17, 1], [60, 12]], [[0, 16]], [[30, 17]], [[20, 3], [2, 125]], [[0, 129]]];
  for (const layerCase of cases) {
    const { types, bias, headNorm, activation, window, gemma } = layerCase;
    const label = `${types.map(ggmlTypeName).join("/")}${bias ? ", biases" : ""}${headNorm ? ", head norms" : ""}${gemma ? ", Gemma's query scale, post-norms and soft-capping" : ""}, ${activation}${window ? `, window ${window}` : ""}`;
    it(`is the composed layer, bit for bit: outputs and cache rows, one or several sequences, one thread or two (${label})`, () => {
      const layer = layerOf(layerCase);
      for (const sequences of batches) for (const backend of sequences.length === 1 && sequences[0][1] === 1 ? [wasm, single] : [wasm]) compare(backend, [{ layer, window }], sequences, label);
    });
  }

  it("runs layers one after another as the blocks do, each over its own cache (three layers of different kinds)", () => {
    const layers = [cases[1], cases[2], cases[0]].map((layerCase) => ({ layer: layerOf(layerCase), window: layerCase.window }));
    for (const sequences of batches) for (const backend of sequences.length === 1 ? [wasm, single] : [wasm]) compare(backend, layers, sequences, "a stack");
  });

  it("is what blocks over the backend take, Gemma's included, all layers at once, but not with Q, K and V as one matrix", () => {
    // the layer counts of the calls that ran (none without relaxed SIMD, whose blocks all go composed)
    const sizes: number[] = [];
    const ran = (expected: number[]): void => assert.deepEqual(sizes, kernelsUseRelaxedSimd() ? expected : []);
    const run = (...args: Parameters<WasmBackend["decoderLayers"]>): Float32Array | undefined => {
      const out = wasm.decoderLayers(...args);
      if (out) sizes.push(args[0].length);
      return out;
    };
    const counting = Object.create(wasm, { decoderLayers: { value: run } }) as WasmBackend;
    const cache = { keys: wasm.halfStorage.allocate(64 * kvWidth), values: wasm.halfStorage.allocate(64 * kvWidth) };
    const step = (blocks: DecoderBlock[], position: number): Float32Array => forwardBlocks(counting, blocks, randn(d), 1, [position], () => [{ start: 0, length: 1, kv: cache }]);
    step([blockOf(counting, layerOf(cases[0])), blockOf(counting, layerOf(cases[2]))], 0);
    step([blockOf(counting, layerOf(cases[4]))], 1);
    ran([2, 1]);
    const parts = blockOf(counting, layerOf(cases[0])).parts;
    const fused = weightOf("qkv", GgmlType.Q4_0, randn(d * (qWidth + 2 * kvWidth), 0.1), d);
    const attention = new SelfAttention(counting, { projection: { fused }, output: parts.attention.layerWeights()?.output ?? fused }, parts.attention.shape, parts.attention.rope);
    // a layer that cannot go keeps the others block by block (each taking the one-piece path alone)
    step([blockOf(counting, layerOf(cases[0])), new DecoderBlock(counting, { ...parts, attention })], 2);
    ran([2, 1, 1]);
  });

  it("closes its thread pools", () => {
    wasm.dispose();
    single.dispose();
  });
});
