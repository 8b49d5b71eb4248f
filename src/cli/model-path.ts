import { statSync } from "node:fs";
import { UsageError } from "./fail.js";

/** Checks that a model argument names a readable file before any parsing starts. */
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
