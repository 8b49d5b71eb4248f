import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { WasmBackend } from "../backend/wasm/wasm-backend.js";
import { GgmlType, ggmlTypeName } from "../gguf/ggml-types.js";
import { GgufFile } from "../gguf/reader.js";
import { GgufValueType } from "../gguf/types.js";
import { buildModel } from "../models/registry.js";
import { pureQuant } from "../synth/mix.js";
import { synthesizeModel } from "../synth/synth.js";
import { quantFormat, rowBytes } from "../quant/index.js";
import { Weight } from "../tensor/weight.js";

/** The weight types whose decode rate is measured: what the common quant mixes are made of. */
export const MEASURED_TYPES = [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.F16];

const MATRIX_BYTES = 64 * 2 ** 20;
/** Matrices taken in turn, so that together they overflow the caches as a model's layers do. */
const MATRICES = 4;
/** Row lengths measured: a kernel's rate depends on them (1B models are 2048 wide, 70B 8192). */
export const MEASURED_WIDTHS = [2048, 8192];
const POOL_ROWS = 32;

function randomMatrix(type: GgmlType, cols: number, seed: number): Weight {
  const format = quantFormat(type);
  const stride = rowBytes(format, cols);
  const rows = Math.floor(MATRIX_BYTES / stride / 64) * 64; // whole groups of rows, as the repacked kernels take them
  let state = seed;
  const values = new Float32Array(cols * POOL_ROWS).map(() => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32 - 0.5) * 0.1;
  });
  const pool = new Uint8Array(stride * POOL_ROWS);
  for (let r = 0; r < POOL_ROWS; r++) format.quantizeRow(values, r * cols, pool, r * stride, cols);
  const bytes = new Uint8Array(stride * rows);
  for (let r = 0; r < rows; r++) bytes.set(pool.subarray((r % POOL_ROWS) * stride, (r % POOL_ROWS + 1) * stride), r * stride);
  return new Weight(`bench.${ggmlTypeName(type)}.${seed}`, type, [cols, rows], bytes);
}

/** tsllm's own decode rate over weights of one type and row length, bytes/s: one token through matrices larger than the caches. */
function measureRate(type: GgmlType, cols: number, threads: number | undefined): number {
  const backend = new WasmBackend(threads);
  try {
    const weights = Array.from({ length: MATRICES }, (_, i) => randomMatrix(type, cols, i + 1));
    const x = new Float32Array(cols).map((_, i) => Math.sin(i));
    for (const w of weights) backend.matmul(w, x, 1); // uploads and warms up
    const bytes = weights.reduce((s, w) => s + rowBytes(quantFormat(type), cols) * w.rows, 0);
    let best = Infinity;
    for (let rep = 0; rep < 5; rep++) {
      const started = performance.now();
      for (const w of weights) backend.matmul(w, x, 1);
      best = Math.min(best, performance.now() - started);
    }
    return bytes / (best / 1000);
  } finally {
    backend.dispose();
  }
}

/**
 * What a layer costs besides streaming its weights (norms, RoPE, attention at a short context,
 * activation quantizing, thread dispatch): a forward pass through a model too narrow for its weights to
 * matter, per layer, in seconds.
 */
function measureLayerOverhead(threads: number | undefined): number {
  const dir = mkdtempSync(join(tmpdir(), "tsllm-fit-"));
  const layers = 16;
  const path = join(dir, "narrow.gguf");
  const vocab = Array.from({ length: 64 }, (_, i) => `t${i}`);
  synthesizeModel(path, {
    shape: { embedding: 256, layers, heads: 4, kvHeads: 4, feedForward: 256, context: 512, ropeBase: 10000, tiedOutput: false, llama3RopeScaling: false },
    quant: pureQuant(GgmlType.Q8_0, "Q8_0"),
    vocabFrom: { metadata: new Map([["tokenizer.ggml.tokens", { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: vocab }]]) },
    seed: 1,
  });
  const file = GgufFile.open(path);
  const backend = new WasmBackend(threads);
  try {
    const model = buildModel(file, backend);
    const cache = model.createCache(256);
    for (let i = 0; i < 16; i++) model.forward([i % 64], cache);
    const steps = 64;
    const started = performance.now();
    for (let i = 0; i < steps; i++) model.forward([i % 64], cache);
    return (performance.now() - started) / 1000 / steps / layers;
  } finally {
    backend.dispose();
    file.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface DecodeRates {
  /** Bytes/s by type and row length. */
  rates: Map<GgmlType, Map<number, number>>;
  layerSeconds: number;
}

export function measureDecodeRates(threads?: number, onMeasure?: (what: string) => void): DecodeRates {
  const rates = new Map<GgmlType, Map<number, number>>();
  for (const type of MEASURED_TYPES) {
    const byWidth = new Map<number, number>();
    for (const cols of MEASURED_WIDTHS) byWidth.set(cols, measureRate(type, cols, threads));
    rates.set(type, byWidth);
    onMeasure?.(`${ggmlTypeName(type).padEnd(5)} ${[...byWidth].map(([c, r]) => `${(r / 1e9).toFixed(1)} GB/s (rows of ${c})`).join(", ")}`);
  }
  const layerSeconds = measureLayerOverhead(threads);
  onMeasure?.(`per-layer work besides the weights: ${(layerSeconds * 1e6).toFixed(0)} µs`);
  return { rates, layerSeconds };
}

/** The rate for rows of `cols`, interpolated between the measured widths (log scale), clamped at the ends. */
export function rateFor(rates: DecodeRates["rates"], type: GgmlType, cols: number): number | undefined {
  const byWidth = rates.get(type);
  if (!byWidth) return undefined;
  const points = [...byWidth].sort((a, b) => a[0] - b[0]);
  if (cols <= points[0][0]) return points[0][1];
  for (let i = 1; i < points.length; i++) {
    if (cols <= points[i][0]) {
      const t = Math.log(cols / points[i - 1][0]) / Math.log(points[i][0] / points[i - 1][0]);
      return points[i - 1][1] + t * (points[i][1] - points[i - 1][1]);
    }
  }
  return points[points.length - 1][1];
}

export interface SavedRates {
  measuredAt: string;
  threads: number;
  /** Bytes/s by ggml type name, then by row length. */
  rates: Record<string, Record<string, number>>;
  layerSeconds: number;
}

export function saveRates(path: string, measured: DecodeRates, threads: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const rates = Object.fromEntries([...measured.rates].map(([type, byWidth]) => [ggmlTypeName(type), Object.fromEntries(byWidth)]));
  const saved: SavedRates = { measuredAt: new Date().toISOString(), threads, rates, layerSeconds: measured.layerSeconds };
  writeFileSync(path, `${JSON.stringify(saved, null, 2)}\n`);
}

export function loadRates(path: string): SavedRates | undefined {
  try {
    const saved = JSON.parse(readFileSync(path, "utf8")) as SavedRates;
    return typeof saved.rates === "object" && saved.rates !== null && typeof saved.layerSeconds === "number" ? saved : undefined;
  } catch {
    return undefined;
  }
}
