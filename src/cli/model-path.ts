import { statSync } from "node:fs";
import { resolveModel, ResolvedModel } from "../store/resolve.js";
import { UsageError } from "./fail.js";
import { pullProgress } from "./progress.js";

/** Checks that an argument names a readable file (for inputs that must be files, not model references). */
export function requireModelFile(path: string | undefined): string {
  if (!path) throw new UsageError("missing MODEL argument (a path to a .gguf file)");
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new UsageError(`${path}: no such file`);
  }
  if (!stats.isFile()) throw new UsageError(`${path}: not a file`);
  return path;
}

/**
 * A model argument (path, store name, NAME from TSLLM_MODELS, OWNER/REPO[:QUANT], hf:…) made into files,
 * pulling from the hub with a progress bar when nothing local answers.
 */
export async function resolveModelArgument(text: string | undefined): Promise<ResolvedModel> {
  const progress = pullProgress();
  try {
    return await resolveModel(text, { pull: true, onProgress: progress.onProgress });
  } finally {
    progress.stop();
  }
}
