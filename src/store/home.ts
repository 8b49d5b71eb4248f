import { homedir } from "node:os";
import { join } from "node:path";

/** Where pulled models live: `$TSLLM_HOME`, by default `~/.tsllm`. */
export interface StoreLayout {
  root: string;
  /** Content-addressed model files, `sha256-<hex>`. */
  blobs: string;
  /** Downloads in progress; never read as models. */
  partial: string;
  /** One small JSON per model: `<owner>/<repo>/<tag>.json`. */
  manifests: string;
  /** Conversations saved from the chat (`/save NAME`). */
  conversations: string;
}

export function storeLayout(root = process.env.TSLLM_HOME || join(homedir(), ".tsllm")): StoreLayout {
  return {
    root,
    blobs: join(root, "blobs"),
    partial: join(root, "partial"),
    manifests: join(root, "manifests"),
    conversations: join(root, "conversations"),
  };
}

export function blobPath(layout: StoreLayout, sha256: string): string {
  return join(layout.blobs, `sha256-${sha256}`);
}

/** Extra read-only folders of GGUF files (`TSLLM_MODELS`, separated like PATH). */
export function modelFolders(): string[] {
  return (process.env.TSLLM_MODELS ?? "").split(process.platform === "win32" ? ";" : ":").filter((dir) => dir !== "");
}
