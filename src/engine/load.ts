import { Backend } from "../backend/backend.js";
import { collectGarbage } from "../backend/collect-garbage.js";
import { ScalarBackend } from "../backend/scalar/scalar-backend.js";
import { WasmBackend } from "../backend/wasm/wasm-backend.js";
import { ChatTemplate } from "../chat/template.js";
import { GgufFile } from "../gguf/reader.js";
import { Metadata } from "../gguf/metadata.js";
import { buildModel, LanguageModel } from "../models/index.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";

export interface LoadedModel {
  /** The file, or a split model's parts in order. */
  paths: string[];
  file: GgufFile;
  metadata: Metadata;
  model: LanguageModel;
  backend: Backend;
  tokenizer: Tokenizer;
  chatTemplate?: ChatTemplate;
  loadMs: number;
}

/** One path opens a whole file (or a split model from its first part); several are a split model's parts. */
export function openModelFile(paths: string | readonly string[]): GgufFile {
  return typeof paths === "string" ? GgufFile.open(paths) : paths.length === 1 ? GgufFile.open(paths[0]) : GgufFile.openParts(paths);
}

export function loadTokenizer(paths: string | readonly string[]): { file: GgufFile; metadata: Metadata; tokenizer: Tokenizer } {
  const file = openModelFile(paths);
  try {
    const metadata = new Metadata(file.metadata);
    const tokenizer = Tokenizer.fromMetadata(metadata);
    // The merges live on as the tokenizer's ranks; their strings (Llama-3's 280K: 11 MB of heap) need not.
    file.metadata.delete("tokenizer.ggml.merges");
    return { file, metadata, tokenizer };
  } catch (error) {
    file.close();
    throw error;
  }
}

export type BackendName = "wasm" | "scalar";

/** WASM SIMD kernels where they exist, the scalar reference everywhere else; "scalar" is the reference alone. */
export function createBackend(name: BackendName = "wasm", threads?: number): Backend {
  return name === "scalar" ? new ScalarBackend() : new WasmBackend(threads);
}

export function loadModel(paths: string | readonly string[], backend: Backend = createBackend()): LoadedModel {
  const started = performance.now();
  const { file, metadata, tokenizer } = loadTokenizer(paths);
  try {
    const model = buildModel(file, backend);
    const templateSource = metadata.string("tokenizer.chat_template");
    const chatTemplate = templateSource ? new ChatTemplate(templateSource) : undefined;
    // Reading the vocabulary leaves tens of MB of garbage (Qwen2.5's 152K tokens: about 20 MB), which a
    // run of forward passes, allocating little, may never give the collector a reason to look at.
    collectGarbage();
    return { paths: typeof paths === "string" ? [paths] : [...paths], file, metadata, model, backend, tokenizer, chatTemplate, loadMs: performance.now() - started };
  } catch (error) {
    file.close();
    throw error;
  }
}
