import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { GgufFile, Metadata } from "../src/gguf/index.js";
import { StreamDecoder, Tokenizer } from "../src/tokenizer/index.js";
import { MergeRanks } from "../src/tokenizer/merge-ranks.js";
import { llama3Vocabulary } from "../bench/llama3-vocab.js";
import { MODELS, STORIES, VOCAB_DIR } from "./helpers/paths.js";

/** llama.cpp's test-tokenizer-0 format: inputs split on the separator, one line of ids per input. */
function readVectors(inpPath: string): { text: string; ids: number[] }[] {
  const inputs = readFileSync(inpPath, "utf8").split("\n__ggml_vocab_test__\n");
  if (inputs[inputs.length - 1] === "") inputs.pop();
  const outputs = readFileSync(inpPath.replace(/\.inp$/, ".out"), "utf8").split("\n");
  return inputs.map((text, i) => ({ text, ids: outputs[i].trim() === "" ? [] : outputs[i].trim().split(/\s+/).map(Number) }));
}

function tokenizerOf(path: string): Tokenizer {
  const file = GgufFile.open(path);
  try {
    return Tokenizer.fromMetadata(new Metadata(file.metadata));
  } finally {
    file.close();
  }
}

function checkAll(tokenizer: Tokenizer, vectors: { text: string; ids: number[] }[], label: string): void {
  let passed = 0;
  for (const { text, ids } of vectors) {
    const got = tokenizer.encode(text, { addSpecial: false, parseSpecial: false });
    assert.deepEqual(got, ids, `${label}: ${JSON.stringify(text)}`);
    passed++;
  }
  console.log(`  ${label.padEnd(16)} ${passed}/${vectors.length}`);
}

const vectorFiles = readdirSync(VOCAB_DIR).filter((f) => f.endsWith(".gguf.inp"));

describe("llama.cpp tokenizer test vectors", () => {
  it("has vectors to check", () => assert.ok(vectorFiles.length >= 10));
  for (const inp of vectorFiles) {
    const gguf = join(VOCAB_DIR, inp.replace(/\.inp$/, ""));
    const name = inp.replace(/^ggml-vocab-|\.gguf\.inp$/g, "");
    // Vectors whose vocab GGUF is not shipped (≥ 4 MiB upstream) cannot be run; llama-bpe is covered below.
    if (!existsSync(gguf)) continue;
    it(`${name}: every vector gives llama.cpp's ids`, () => checkAll(tokenizerOf(gguf), readVectors(join(VOCAB_DIR, inp)), name));
  }

  it("llama-bpe (Llama-3): every vector, with the vocabulary built from tokenizers/llama-3.2 as GGUF metadata", () => {
    const { metadata } = llama3Vocabulary(join(MODELS, "tokenizers", "llama-3.2"));
    const tokenizer = Tokenizer.fromMetadata(new Metadata(metadata));
    checkAll(tokenizer, readVectors(join(VOCAB_DIR, "ggml-vocab-llama-bpe.gguf.inp")), "llama-bpe");
  });
});

describe("special tokens and BOS", () => {
  const phi3 = tokenizerOf(join(VOCAB_DIR, "ggml-vocab-phi-3.gguf"));

  it("treats special-token text as plain text unless asked", () => {
    const plain = phi3.encode("<|user|>hi", { addSpecial: false });
    assert.ok(!plain.includes(32010));
    const parsed = phi3.encode("<|user|>hi", { addSpecial: false, parseSpecial: true });
    assert.equal(parsed[0], 32010);
  });

  it("adds BOS as the metadata says", () => {
    assert.equal(phi3.encode("hi")[0], 1);
    assert.notEqual(phi3.encode("hi", { addSpecial: false })[0], 1);
    const gpt2 = tokenizerOf(join(VOCAB_DIR, "ggml-vocab-gpt-2.gguf"));
    assert.deepEqual(gpt2.encode("hello"), gpt2.encode("hello", { addSpecial: false }));
    const coder = tokenizerOf(join(VOCAB_DIR, "ggml-vocab-deepseek-coder.gguf"));
    assert.equal(coder.encode("hello")[0], 32013);
  });

  it("ends generation on EOS and on the chat formats' end-of-turn control tokens", () => {
    assert.deepEqual([...phi3.vocab.endOfGeneration].sort((a, b) => a - b), [32000, 32007]);
    assert.deepEqual([...tokenizerOf(STORIES).vocab.endOfGeneration], [2]);
  });

  it("gives the empty string no tokens, or only BOS", () => {
    const stories = tokenizerOf(STORIES);
    assert.deepEqual(stories.encode("", { addSpecial: false }), []);
    assert.deepEqual(stories.encode(""), [1]);
  });
});

describe("streaming detokenization", () => {
  it("never splits a UTF-8 character across byte-fallback tokens", () => {
    const stories = tokenizerOf(STORIES);
    const text = "Lily saw 🐶 and 我愛 café";
    const ids = stories.encode(text, { addSpecial: false });
    const decoder = new StreamDecoder(stories);
    const chunks = ids.map((id) => decoder.push(id));
    chunks.push(decoder.flush());
    for (const chunk of chunks) assert.ok(!chunk.includes("\ufffd"), `chunk ${JSON.stringify(chunk)} holds a broken character`);
    assert.equal(chunks.join(""), ` ${text}`);
    assert.ok(ids.some((id) => stories.vocab.pieces[id].startsWith("<0x")), "the text should need byte tokens");
  });

  it("decodes byte-level BPE back to the input", () => {
    const gpt2 = tokenizerOf(join(VOCAB_DIR, "ggml-vocab-gpt-2.gguf"));
    const text = "Hello 世界 — naïve ünïcödé\n\tcode()";
    const decoder = new StreamDecoder(gpt2);
    const out = gpt2.encode(text).map((id) => decoder.push(id)).join("") + decoder.flush();
    assert.equal(out, text);
  });
});

describe("BPE merge ranks", () => {
  const pieces = ["a", "b", "c", "ab", "bc", "abc", " a"];
  const pieceToId = new Map(pieces.map((p, i) => [p, i]));
  // llama.cpp splits each merge at its first space after the first character and keeps the first rank of a pair
  const ranks = new MergeRanks(["a b", "ab c", "a b", " a b", "x y", "b c d", "nospace"], pieceToId);
  it("ranks pairs of vocabulary pieces by their first merge", () => {
    assert.equal(ranks.rank("a", "b"), 0);
    assert.equal(ranks.rank("ab", "c"), 1);
    assert.equal(ranks.rank(" a", "b"), 3);
    assert.equal(ranks.rank("b", "a"), undefined);
    assert.equal(ranks.rank("a", "c"), undefined);
  });
  it("keeps merges whose parts are not pieces, split where llama.cpp splits them", () => {
    assert.equal(ranks.rank("x", "y"), 4);
    assert.equal(ranks.rank("b", "c d"), 5);
    assert.equal(ranks.rank("b c", "d"), undefined);
    assert.equal(ranks.rank("", ""), 6);
  });
});
