import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { GgufFile } from "../src/gguf/index.js";
import { QuantPlan } from "../src/synth/mix.js";
import { PRESETS } from "../src/synth/presets.js";
import { synthesizeModel } from "../src/synth/synth.js";
import { llama3Vocabulary } from "./llama3-vocab.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SHARED_MODELS = resolve(ROOT, "../shared/models");
const CACHE = join(ROOT, ".cache", "synth");

export interface SynthCase {
  preset: "tinyllama-1.1b" | "llama3.2-1b";
  quant: QuantPlan;
}

/** A random-weight model with a real shape and vocabulary, generated once into .cache/synth. */
export function modelFor({ preset, quant }: SynthCase): string {
  mkdirSync(CACHE, { recursive: true });
  const path = join(CACHE, `${preset}-${quant.name}.gguf`);
  if (existsSync(path)) return path;
  process.stderr.write(`generating ${path} …\n`);
  if (preset === "llama3.2-1b") {
    synthesizeModel(path, { shape: PRESETS[preset], quant, vocabFrom: llama3Vocabulary(join(SHARED_MODELS, "tokenizers", "llama-3.2")), seed: 1 });
  } else {
    const vocab = GgufFile.open(join(SHARED_MODELS, "llama-2-tiny-random.gguf"));
    synthesizeModel(path, { shape: PRESETS[preset], quant, vocabFrom: vocab, seed: 1 });
    vocab.close();
  }
  return path;
}

