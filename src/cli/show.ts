import { parseArgs } from "node:util";
import { ggmlTypeName } from "../gguf/ggml-types.js";
import { Metadata } from "../gguf/metadata.js";
import { GgufFile } from "../gguf/reader.js";
import { GgufValue, GgufValueType } from "../gguf/types.js";
import { openModelFile } from "../engine/load.js";
import { summarizeModel } from "../store/model-summary.js";
import { formatBytes, formatCount } from "./format.js";
import { resolveModelArgument } from "./model-path.js";

export const SHOW_USAGE = `tsllm show MODEL [--verbose]   architecture, parameters, context, quant mix, chat template; --verbose: all metadata`;

/** A summary of a GGUF model: what it is, how big, how quantized, and what its tokenizer is. */
export function describeModel(file: GgufFile): [string, string][] {
  const meta = new Metadata(file.metadata);
  const summary = summarizeModel(file);
  const arch = summary.architecture;
  const byType = new Map<string, number>();
  for (const t of file.tensors) byType.set(ggmlTypeName(t.type), (byType.get(ggmlTypeName(t.type)) ?? 0) + 1);
  const mix = [...byType].sort((a, b) => b[1] - a[1]).map(([type, n]) => `${type} ×${n}`).join(", ");
  const tokens = meta.stringArray("tokenizer.ggml.tokens")?.length ?? 0;
  const pre = meta.string("tokenizer.ggml.pre");
  return [
    ["name", meta.string("general.name") ?? "-"],
    ["architecture", arch],
    ["parameters", summary.parameters ? formatCount(summary.parameters) : "0 (vocab only)"],
    ["quantization", summary.quant],
    ["tensor types", mix || "-"],
    ["size", `${formatBytes(file.totalSize)}${file.partCount > 1 ? ` in ${file.partCount} parts` : ""}`],
    ["context length", String(summary.contextLength ?? "-")],
    ["embedding length", String(meta.number(`${arch}.embedding_length`) ?? "-")],
    ["layers", String(meta.number(`${arch}.block_count`) ?? "-")],
    ["vocab", `${meta.string("tokenizer.ggml.model") ?? "none"} (${tokens} tokens${pre ? `, pre ${pre}` : ""})`],
    ["gguf version", String(file.header.version)],
  ];
}

const ARRAY_PREVIEW = 8;

/** One metadata value as llama.cpp's loader prints it: arrays shortened to their first items. */
export function formatMetadataValue(entry: GgufValue): string {
  if (entry.type !== GgufValueType.ARRAY) return typeof entry.value === "string" ? JSON.stringify(entry.value) : String(entry.value);
  const items = Array.from(entry.value as ArrayLike<unknown>);
  const shown = items.slice(0, ARRAY_PREVIEW).map((v) => (typeof v === "string" ? JSON.stringify(v) : String(v)));
  return `[${shown.join(", ")}${items.length > ARRAY_PREVIEW ? ", …" : ""}] (${items.length} items)`;
}

export async function showCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { verbose: { type: "boolean", short: "v" } } });
  const resolved = await resolveModelArgument(positionals[0]);
  const file = openModelFile(resolved.paths);
  try {
    const rows: [string, string][] = [["model", resolved.name], ...describeModel(file)];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [key, value] of rows) process.stdout.write(`${key.padEnd(width)}  ${value}\n`);
    const template = new Metadata(file.metadata).string("tokenizer.chat_template");
    process.stdout.write(`\nchat template${template ? `:\n${template}\n` : ": none (prompts are raw)\n"}`);
    if (values.verbose) {
      process.stdout.write(`\nmetadata (${file.metadata.size} keys):\n`);
      for (const [key, entry] of file.metadata) {
        if (key === "tokenizer.chat_template") continue;
        process.stdout.write(`  ${key} = ${formatMetadataValue(entry)}\n`);
      }
    }
  } finally {
    file.close();
  }
}
