import { fileTypeName } from "../gguf/file-type.js";
import { ggmlTypeName } from "../gguf/ggml-types.js";
import { Metadata } from "../gguf/metadata.js";
import { GgufFile } from "../gguf/reader.js";

export interface ModelSummary {
  architecture: string;
  parameters: number;
  /** The file's quant mix (Q4_K_M …), or its most common weight type when the file does not say. */
  quant: string;
  contextLength?: number;
}

export function summarizeModel(file: GgufFile): ModelSummary {
  const meta = new Metadata(file.metadata);
  const architecture = meta.string("general.architecture") ?? "unknown";
  const parameters = file.tensors.reduce((sum, t) => sum + t.dims.reduce((a, b) => a * b, 1), 0);
  const fileType = meta.number("general.file_type");
  return {
    architecture,
    parameters,
    quant: (fileType !== undefined ? fileTypeName(fileType) : undefined) ?? commonestWeightType(file),
    contextLength: meta.number(`${architecture}.context_length`),
  };
}

function commonestWeightType(file: GgufFile): string {
  const bytesByType = new Map<string, number>();
  for (const t of file.tensors) {
    if (t.dims.length < 2) continue;
    const name = ggmlTypeName(t.type);
    bytesByType.set(name, (bytesByType.get(name) ?? 0) + t.byteSize);
  }
  return [...bytesByType].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "-";
}
