import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { encodeGgufHeader, GgmlType, GgufError, GgufFile, GgufValueType, writeGguf } from "../src/gguf/index.js";
import { ggufFilesIn, MODELS, VOCAB_DIR, ZOO } from "./helpers/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-gguf-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const ALL_FILES = [...ggufFilesIn(MODELS), ...ggufFilesIn(VOCAB_DIR), ...ggufFilesIn(ZOO)];

function rewrite(path: string): Buffer {
  const file = GgufFile.open(path);
  try {
    const inOffsetOrder = [...file.tensors].sort((a, b) => a.offset - b.offset);
    const out = join(scratch, "roundtrip.gguf");
    writeGguf(out, {
      version: file.header.version as 2 | 3,
      metadata: file.metadata,
      tensors: inOffsetOrder.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: () => file.readTensorData(t) })),
    });
    return readFileSync(out);
  } finally {
    file.close();
  }
}

describe("GGUF reader and writer", () => {
  it("finds the shared test files", () => {
    assert.ok(ALL_FILES.length >= 30, `only ${ALL_FILES.length} GGUF files found under ../shared`);
  });

  for (const path of ALL_FILES) {
    it(`round-trips ${path.split("/").slice(-2).join("/")} byte for byte`, () => {
      assert.ok(readFileSync(path).equals(rewrite(path)));
    });
  }

  it("reads vocab-only files whose data section starts past the end", () => {
    const file = GgufFile.open(join(VOCAB_DIR, "ggml-vocab-baichuan.gguf"));
    assert.equal(file.tensors.length, 0);
    assert.ok(file.header.dataOffset > file.header.fileSize);
    file.close();
  });

  it("refuses GGUF v1 with a clear message", () => {
    assert.throws(
      () => GgufFile.open(join(MODELS, "legacy", "tinyllamas-stories-260k-f32.gguf")),
      (e: unknown) => e instanceof GgufError && e.code === "unsupported-version" && /version 1/.test(e.message),
    );
  });

  it("reads tensors past 2 GiB by offset, without loading the file", () => {
    // A 3 GiB tensor followed by a small one, in a sparse file: only the header and the tail hold data.
    const path = join(scratch, "big.gguf");
    const bigElements = 3 * 2 ** 28; // 3 GiB of F32
    const tail = Float32Array.from([1.5, -2.25, 3.125, 4, 5, 6, 7, 8]);
    const header = encodeGgufHeader({
      metadata: new Map([["general.architecture", { type: GgufValueType.STRING, value: "llama" }]]),
      tensors: [
        { name: "big.weight", dims: [bigElements], type: GgmlType.F32 },
        { name: "tail.weight", dims: [8], type: GgmlType.F32 },
      ],
    });
    writeFileSync(path, header.bytes);
    const tailOffset = header.dataOffset + bigElements * 4;
    truncateSync(path, tailOffset + 32);
    const fd = openSync(path, "r+");
    writeSync(fd, new Uint8Array(tail.buffer), 0, 32, tailOffset);
    closeSync(fd);
    const file = GgufFile.open(path);
    const info = file.tensor("tail.weight");
    assert.ok(info && file.header.dataOffset + info.offset > 2 ** 31);
    assert.deepEqual(Array.from(new Float32Array(file.readTensorData(info).buffer)), Array.from(tail));
    file.close();
  });

  it("names a missing file", () => {
    assert.throws(() => GgufFile.open(join(scratch, "nope.gguf")), (e: unknown) => e instanceof GgufError && e.code === "io" && /no such file/.test(e.message));
  });
});
