import { parseArgs } from "node:util";
import { GgufFile } from "../gguf/reader.js";
import { ggmlTypeName } from "../gguf/ggml-types.js";
import { Metadata } from "../gguf/metadata.js";
import { requireModelFile } from "./model-path.js";

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** A summary of a GGUF file: what it is, how big, how quantized, and what its tokenizer is. */
export function describeModel(file: GgufFile): [string, string][] {
  const meta = new Metadata(file.metadata);
  const arch = meta.string("general.architecture") ?? "unknown";
  const parameters = file.tensors.reduce((sum, t) => sum + t.dims.reduce((a, b) => a * b, 1), 0);
  const byType = new Map<string, number>();
  for (const t of file.tensors) byType.set(ggmlTypeName(t.type), (byType.get(ggmlTypeName(t.type)) ?? 0) + 1);
  const quant = [...byType].sort((a, b) => b[1] - a[1]).map(([type, n]) => `${type} ×${n}`).join(", ");
  const tokens = meta.stringArray("tokenizer.ggml.tokens")?.length ?? 0;
  const rows: [string, string][] = [
    ["name", meta.string("general.name") ?? "-"],
    ["architecture", arch],
    ["parameters", parameters ? formatCount(parameters) : "0 (vocab only)"],
    ["tensor types", quant || "-"],
    ["context length", String(meta.number(`${arch}.context_length`) ?? "-")],
    ["embedding length", String(meta.number(`${arch}.embedding_length`) ?? "-")],
    ["layers", String(meta.number(`${arch}.block_count`) ?? "-")],
    ["vocab", `${meta.string("tokenizer.ggml.model") ?? "none"} (${tokens} tokens${meta.string("tokenizer.ggml.pre") ? `, pre ${meta.string("tokenizer.ggml.pre")}` : ""})`],
    ["chat template", meta.string("tokenizer.chat_template") ? "yes" : "no (prompts are raw)"],
    ["gguf version", String(file.header.version)],
  ];
  return rows;
}

export async function showCommand(argv: string[]): Promise<void> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  const file = GgufFile.open(requireModelFile(positionals[0]));
  try {
    const rows = describeModel(file);
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [key, value] of rows) process.stdout.write(`${key.padEnd(width)}  ${value}\n`);
  } finally {
    file.close();
  }
}
