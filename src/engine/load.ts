import { Backend } from "../backend/backend.js";
import { ScalarBackend } from "../backend/scalar/scalar-backend.js";
import { WasmBackend } from "../backend/wasm/wasm-backend.js";
import { ChatTemplate } from "../chat/template.js";
import { GgufFile } from "../gguf/reader.js";
import { Metadata } from "../gguf/metadata.js";
import { buildModel, LanguageModel } from "../models/index.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";

export interface LoadedModel {
  path: string;
  file: GgufFile;
  metadata: Metadata;
  model: LanguageModel;
  backend: Backend;
  tokenizer: Tokenizer;
  chatTemplate?: ChatTemplate;
  loadMs: number;
}

export function loadTokenizer(path: string): { file: GgufFile; metadata: Metadata; tokenizer: Tokenizer } {
  const file = GgufFile.open(path);
  try {
    const metadata = new Metadata(file.metadata);
    return { file, metadata, tokenizer: Tokenizer.fromMetadata(metadata) };
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

export function loadModel(path: string, backend: Backend = createBackend()): LoadedModel {
  const started = performance.now();
  const { file, metadata, tokenizer } = loadTokenizer(path);
  try {
    const model = buildModel(file, backend);
    const templateSource = metadata.string("tokenizer.chat_template");
    const chatTemplate = templateSource ? new ChatTemplate(templateSource) : undefined;
    return { path, file, metadata, model, backend, tokenizer, chatTemplate, loadMs: performance.now() - started };
  } catch (error) {
    file.close();
    throw error;
  }
}
