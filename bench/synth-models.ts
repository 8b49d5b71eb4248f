import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { GgufFile, GgufValue } from "../src/gguf/index.js";
import { withControlTokens } from "../src/synth/control-tokens.js";
import { QuantPlan } from "../src/synth/mix.js";
import { PRESETS } from "../src/synth/presets.js";
import { SynthArchitecture, synthesizeModel } from "../src/synth/synth.js";
import { llama3Vocabulary } from "./llama3-vocab.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SHARED_MODELS = resolve(ROOT, "../shared/models");
const CACHE = join(ROOT, ".cache", "synth");

export interface SynthCase {
  preset: "tinyllama-1.1b" | "llama3.2-1b" | "qwen2.5-0.5b" | "gemma2-2b";
  quant: QuantPlan;
}

/** Each preset's architecture and the size of its real vocabulary (what the output matrix costs). */
const ARCHITECTURES: Record<SynthCase["preset"], { architecture: SynthArchitecture; vocabSize?: number }> = {
  "tinyllama-1.1b": { architecture: "llama" },
  "llama3.2-1b": { architecture: "llama" },
  "qwen2.5-0.5b": { architecture: "qwen2", vocabSize: 151936 },
  "gemma2-2b": { architecture: "gemma2", vocabSize: 256000 },
};

/**
 * A vocabulary grown to `size` tokens with unused control tokens, as real vocabularies reserve them:
 * the output matrix gets the real model's size while the text side stays a real tokenizer.
 */
function padded(vocab: { metadata: ReadonlyMap<string, GgufValue> }, size: number): { metadata: Map<string, GgufValue> } {
  const count = (vocab.metadata.get("tokenizer.ggml.tokens")?.value as string[]).length;
  return withControlTokens(vocab.metadata, Array.from({ length: size - count }, (_, i) => `<unused${count + i}>`));
}

/** A random-weight model with a real shape and vocabulary, generated once into .cache/synth. */
export function modelFor({ preset, quant }: SynthCase): string {
  mkdirSync(CACHE, { recursive: true });
  const path = join(CACHE, `${preset}-${quant.name}.gguf`);
  if (existsSync(path)) return path;
  process.stderr.write(`generating ${path} …\n`);
  const { architecture, vocabSize } = ARCHITECTURES[preset];
  // byte-level BPE (Llama 3's) for the BPE families, SentencePiece (Llama 2's) for the others
  const bpe = preset === "llama3.2-1b" || preset === "qwen2.5-0.5b";
  const file = bpe ? undefined : GgufFile.open(join(SHARED_MODELS, "llama-2-tiny-random.gguf"));
  const base = file ?? llama3Vocabulary(join(SHARED_MODELS, "tokenizers", "llama-3.2"));
  synthesizeModel(path, { architecture, shape: PRESETS[preset], quant, vocabFrom: vocabSize ? padded(base, vocabSize) : base, seed: 1 });
  file?.close();
  return path;
}

