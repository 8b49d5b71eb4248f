import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, found from this compiled file (dist/test/helpers/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const SHARED = resolve(REPO_ROOT, "../shared");
export const MODELS = join(SHARED, "models");
export const VOCAB_DIR = join(MODELS, "vocab");
export const ZOO = join(SHARED, "quant-zoo");
export const STORIES = join(MODELS, "stories260K.gguf");
export const TINY_RANDOM = join(MODELS, "llama-2-tiny-random.gguf");
export const CLI = join(REPO_ROOT, "bin", "tsllm.js");

export function ggufFilesIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".gguf")).map((f) => join(dir, f)) : [];
}
