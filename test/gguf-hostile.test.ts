import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { GgufError, GgufFile, MemorySource, readGgufHeader } from "../src/gguf/index.js";
import { SeededRandom } from "../src/sampling/rng.js";
import { MODELS, VOCAB_DIR } from "./helpers/paths.js";

const STORIES_BYTES = new Uint8Array(readFileSync(join(MODELS, "stories260K.gguf")));

/** Parses untrusted bytes: the only acceptable outcomes are a header or a GgufError. */
function parse(bytes: Uint8Array): "ok" | GgufError {
  try {
    const file = GgufFile.fromBytes(bytes);
    for (const t of file.tensors) file.readTensorData(t);
    return "ok";
  } catch (error) {
    if (error instanceof GgufError) return error;
    throw error;
  }
}

/** Byte offsets where the header's sections and entries begin, found by walking a valid file. */
function sectionBoundaries(bytes: Uint8Array): number[] {
  const header = readGgufHeader(new MemorySource(bytes));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boundaries = [0, 4, 8, 16, 24];
  let at = 24;
  const skipString = (): void => {
    at += 8 + Number(view.getBigUint64(at, true));
  };
  const scalarSize = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];
  for (let i = 0; i < header.metadata.size; i++) {
    skipString();
    boundaries.push(at);
    const type = view.getUint32(at, true);
    at += 4;
    if (type === 8) skipString();
    else if (type === 9) {
      const itemType = view.getUint32(at, true);
      const count = Number(view.getBigUint64(at + 4, true));
      at += 12;
      if (itemType === 8) for (let k = 0; k < count; k++) skipString();
      else at += count * scalarSize[itemType];
    } else at += scalarSize[type];
    boundaries.push(at);
  }
  for (const t of header.tensors) {
    boundaries.push(at);
    at += 8 + Buffer.byteLength(t.name) + 4 + 8 * t.dims.length + 4 + 8;
  }
  boundaries.push(at, header.dataOffset);
  for (const t of header.tensors) boundaries.push(header.dataOffset + t.offset, header.dataOffset + t.offset + t.byteSize - 1);
  return boundaries;
}

/** A minimal v3 file with one KV entry (`key` of type `type` followed by `payload`) and no tensors. */
function craft(parts: (number | bigint | string | Uint8Array)[][]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const part of parts) {
    for (const v of part) {
      if (v instanceof Uint8Array) chunks.push(v);
      else if (typeof v === "string") {
        const b = Buffer.from(v);
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(BigInt(b.length));
        chunks.push(len, b);
      } else if (typeof v === "bigint") {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(v);
        chunks.push(b);
      } else {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(v);
        chunks.push(b);
      }
    }
  }
  return new Uint8Array(Buffer.concat(chunks));
}

const MAGIC = 0x46554747;

describe("GGUF reader under hostile input", () => {
  it("ends every truncation at a section boundary in a typed error", () => {
    const cuts = new Set<number>();
    for (const b of sectionBoundaries(STORIES_BYTES)) for (const d of [-1, 0, 1]) if (b + d > 0 && b + d < STORIES_BYTES.length) cuts.add(b + d);
    assert.ok(cuts.size > 200, `only ${cuts.size} cut points`);
    for (const cut of cuts) {
      const result = parse(STORIES_BYTES.subarray(0, cut));
      assert.ok(result instanceof GgufError, `cut at ${cut} parsed as a valid file`);
    }
  });

  it("survives 2000 randomized byte flips with a typed error or a valid parse", () => {
    const rng = new SeededRandom(1234);
    const headerEnd = readGgufHeader(new MemorySource(STORIES_BYTES)).dataOffset;
    const vocab = new Uint8Array(readFileSync(join(VOCAB_DIR, "ggml-vocab-llama-spm.gguf")));
    let errors = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const source = trial % 2 === 0 ? STORIES_BYTES : vocab;
      const limit = source === STORIES_BYTES ? headerEnd : Math.min(source.length, 4096);
      const bytes = source.slice();
      const flips = 1 + Math.floor(rng.next() * 4);
      for (let f = 0; f < flips; f++) bytes[Math.floor(rng.next() * limit)] ^= 1 << Math.floor(rng.next() * 8);
      const started = performance.now();
      if (parse(bytes) !== "ok") errors++;
      assert.ok(performance.now() - started < 2000, `trial ${trial} took too long`);
    }
    assert.ok(errors > 100, `only ${errors} of 2000 corruptions were caught`);
  });

  it("refuses absurd counts and lengths before allocating", () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ["tensor count", craft([[MAGIC, 3], [1n << 40n, 0n]]), /tensor count/],
      ["metadata count", craft([[MAGIC, 3], [0n, 1n << 50n]]), /metadata count/],
      ["string length", craft([[MAGIC, 3], [0n, 1n], ["general.name", 8, 1n << 60n]]), /general\.name/],
      ["array length", craft([[MAGIC, 3], [0n, 1n], ["tokenizer.ggml.scores", 9, 6, 1n << 40n]]), /tokenizer\.ggml\.scores/],
      ["unknown value type", craft([[MAGIC, 3], [0n, 1n], ["x.y", 99]]), /x\.y.*unknown value type/],
      ["nested array", craft([[MAGIC, 3], [0n, 1n], ["x.nested", 9, 9, 1n]]), /x\.nested.*nested/],
      ["bad bool", craft([[MAGIC, 3], [0n, 1n], ["x.flag", 7, new Uint8Array([7])]]), /x\.flag/],
      ["bad alignment", craft([[MAGIC, 3], [0n, 1n], ["general.alignment", 4, 3]]), /general\.alignment/],
      ["duplicate key", craft([[MAGIC, 3], [0n, 2n], ["k", 4, 1, "k", 4, 2]]), /k: duplicate key/],
      ["version", craft([[MAGIC, 7], [0n, 0n]]), /unsupported GGUF version 7/],
      ["magic", craft([[0x12345678, 3], [0n, 0n]]), /not a GGUF file/],
    ];
    for (const [label, bytes, pattern] of cases) {
      const result = parse(bytes);
      assert.ok(result instanceof GgufError, `${label}: parsed`);
      assert.match(result.message, pattern, label);
    }
  });

  it("names the tensor for bad dimensions, types, offsets and overlaps", () => {
    const tensor = (name: string, dims: bigint[], type: number, offset: bigint): (number | bigint | string)[] => [name, dims.length, ...dims, type, offset];
    const withTensors = (...tensors: (number | bigint | string)[][]): Uint8Array => {
      const head = craft([[MAGIC, 3], [BigInt(tensors.length), 0n], ...tensors]);
      const padded = new Uint8Array(Math.ceil(head.length / 32) * 32 + 256);
      padded.set(head);
      return padded;
    };
    const cases: [string, Uint8Array, RegExp][] = [
      ["five dims", withTensors(tensor("a.weight", [1n, 1n, 1n, 1n, 1n], 0, 0n)), /a\.weight: has 5 dimensions/],
      ["huge dim", withTensors(tensor("b.weight", [1n << 62n], 0, 0n)), /b\.weight/],
      ["element overflow", withTensors(tensor("c.weight", [1n << 30n, 1n << 30n, 1n << 30n], 0, 0n)), /c\.weight.*overflow/],
      ["unknown type", withTensors(tensor("d.weight", [32n], 77, 0n)), /d\.weight: unknown tensor type 77/],
      ["bad block multiple", withTensors(tensor("e.weight", [30n], 2, 0n)), /e\.weight.*block size/],
      ["out of range", withTensors(tensor("f.weight", [1024n], 0, 0n)), /f\.weight.*past the end/],
      ["unaligned", withTensors(tensor("g.weight", [4n], 0, 3n)), /g\.weight.*not aligned/],
      ["overlap", withTensors(tensor("h.weight", [16n], 0, 0n), tensor("i.weight", [16n], 0, 32n)), /i\.weight: data overlaps tensor h\.weight/],
      ["duplicate", withTensors(tensor("j.weight", [4n], 0, 0n), tensor("j.weight", [4n], 0, 32n)), /j\.weight: duplicate/],
    ];
    for (const [label, bytes, pattern] of cases) {
      const result = parse(bytes);
      assert.ok(result instanceof GgufError, `${label}: parsed`);
      assert.match(result.message, pattern, label);
    }
  });
});
