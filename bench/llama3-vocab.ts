import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GgufValue, GgufValueType } from "../src/gguf/index.js";

/** Llama-3's byte-level BPE vocabulary as GGUF metadata, from the shared encoder.json and vocab.bpe. */
export function llama3Vocabulary(dir: string): { metadata: Map<string, GgufValue> } {
  const encoder = JSON.parse(readFileSync(join(dir, "encoder.json"), "utf8")) as Record<string, number>;
  const pieces: string[] = [];
  for (const [piece, id] of Object.entries(encoder)) pieces[id] = piece;
  const types = new Int32Array(128256).fill(1);
  for (let i = 128000; i < 128256; i++) {
    pieces[i] = i === 128000 ? "<|begin_of_text|>" : i === 128001 ? "<|end_of_text|>" : i === 128009 ? "<|eot_id|>" : `<|reserved_special_token_${i - 128000}|>`;
    types[i] = 3;
  }
  const merges = readFileSync(join(dir, "vocab.bpe"), "utf8").split("\n").filter((l) => l && !l.startsWith("#version"));
  const str = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });
  const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
  return {
    metadata: new Map<string, GgufValue>([
      ["tokenizer.ggml.model", str("gpt2")],
      ["tokenizer.ggml.pre", str("llama-bpe")],
      ["tokenizer.ggml.tokens", { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: pieces }],
      ["tokenizer.ggml.token_type", { type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: types }],
      ["tokenizer.ggml.merges", { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: merges }],
      ["tokenizer.ggml.bos_token_id", u32(128000)],
      ["tokenizer.ggml.eos_token_id", u32(128009)],
    ]),
  };
}
