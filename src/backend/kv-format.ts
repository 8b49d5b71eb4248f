import { GgmlType } from "../gguf/ggml-types.js";
import { floatToHalf, HALF_TO_FLOAT, quantFormat } from "../quant/index.js";
import { KvType, LayerKv } from "./backend.js";

export type { KvType };

export const KV_TYPES: readonly KvType[] = ["f16", "q8_0"];

/** Q8_0: 32 values a block, one f16 scale and 32 int8 quants (34 bytes, 17 halves). */
const Q8_0_BLOCK = 32;
const Q8_0_HALVES = 17;

/** Why a cache of this type cannot hold this model's heads, if it cannot. */
export function kvTypeProblem(type: KvType, headDim: number): string | undefined {
  if (type === "q8_0" && headDim % Q8_0_BLOCK !== 0) {
    return `a q8_0 KV cache needs a head size that is a multiple of ${Q8_0_BLOCK}; this model's is ${headDim}`;
  }
  return undefined;
}

/** 16-bit units of one cache row of `kvWidth` values (storage is Uint16Array whatever the type). */
export function kvRowHalves(kvWidth: number, type: KvType = "f16"): number {
  return type === "q8_0" ? (kvWidth / Q8_0_BLOCK) * Q8_0_HALVES : kvWidth;
}

/** Bytes of keys and values for one token of one layer. */
export function kvBytesPerLayerToken(kvWidth: number, type: KvType = "f16"): number {
  return 2 * 2 * kvRowHalves(kvWidth, type);
}

function bytesOf(halves: Uint16Array): Uint8Array {
  return new Uint8Array(halves.buffer, halves.byteOffset, halves.byteLength);
}

/** Writes `values` (kvWidth of them from `from`) as the cache row at `row`, rounded to the cache's type. */
export function writeKvRow(target: Uint16Array, type: KvType, row: number, values: Float32Array, from: number, kvWidth: number): void {
  if (type === "q8_0") {
    quantFormat(GgmlType.Q8_0).quantizeRow(values, from, bytesOf(target), row * kvRowHalves(kvWidth, type) * 2, kvWidth);
    return;
  }
  const at = row * kvWidth;
  for (let i = 0; i < kvWidth; i++) target[at + i] = floatToHalf(values[from + i]);
}

/** The cache row at `row` widened to f32 into `out` at `to`. */
export function readKvRow(source: Uint16Array, type: KvType, row: number, out: Float32Array, to: number, kvWidth: number): void {
  if (type === "q8_0") {
    quantFormat(GgmlType.Q8_0).dequantizeRow(bytesOf(source), row * kvRowHalves(kvWidth, type) * 2, out, to, kvWidth);
    return;
  }
  const at = row * kvWidth;
  for (let i = 0; i < kvWidth; i++) out[to + i] = HALF_TO_FLOAT[source[at + i]];
}

/** Keys and values of positions 0 … count − 1 widened to f32 in position order (through a paged cache's rows). */
export function widenLayer(kv: LayerKv, kvWidth: number, count: number): { keys: Float32Array; values: Float32Array } {
  const type = kv.type ?? "f16";
  const keys = new Float32Array(count * kvWidth);
  const values = new Float32Array(count * kvWidth);
  for (let p = 0; p < count; p++) {
    const row = kv.rows ? kv.rows[p] : p;
    readKvRow(kv.keys, type, row, keys, p * kvWidth, kvWidth);
    readKvRow(kv.values, type, row, values, p * kvWidth, kvWidth);
  }
  return { keys, values };
}

/**
 * q as it meets the cache's keys: llama.cpp converts it to the keys' dot-product type first, F16 for an
 * F16 cache, Q8_0 blocks for a q8_0 one. Returns the rounded values in a new array.
 */
export function roundQueryForKeys(q: Float32Array, type: KvType): Float32Array {
  const out = new Float32Array(q.length);
  if (type === "q8_0") {
    const format = quantFormat(GgmlType.Q8_0);
    const blocks = new Uint8Array((q.length / Q8_0_BLOCK) * Q8_0_HALVES * 2);
    format.quantizeRow(q, 0, blocks, 0, q.length);
    format.dequantizeRow(blocks, 0, out, 0, q.length);
    return out;
  }
  for (let i = 0; i < q.length; i++) out[i] = HALF_TO_FLOAT[floatToHalf(q[i])];
  return out;
}
