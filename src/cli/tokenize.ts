import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { loadTokenizer } from "../engine/load.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { UsageError } from "./fail.js";
import { formatTable } from "./format.js";
import { resolveModelArgument } from "./model-path.js";

export const TOKENIZE_USAGE = `tsllm tokenize MODEL "TEXT" [--no-bos] [--special] [--pieces]
tsllm tokenize MODEL --batch   < lines.jsonl   (one JSON string per line in, one id array per line out)
tsllm tokenize --compare MODEL MODEL … "TEXT"   how each model's tokenizer splits the text: count, pieces, characters per token`;

interface TokenizeFlags {
  addSpecial: boolean;
  parseSpecial: boolean;
  pieces: boolean;
}

function render(tokenizer: Tokenizer, text: string, flags: TokenizeFlags): string {
  const ids = tokenizer.encode(text, { addSpecial: flags.addSpecial, parseSpecial: flags.parseSpecial });
  if (!flags.pieces) return JSON.stringify(ids);
  return JSON.stringify(ids.map((id) => ({ id, piece: tokenizer.piece(id) })));
}

/** A token's bytes as text when they are whole UTF-8, else as hex (a piece of a split character). */
export function displayPiece(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return `<${Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, "0")).join(" ")}>`;
  }
}

/** The same text through several models' tokenizers, side by side (no BOS: the text's own tokens). */
async function compareTokenizers(positionals: string[]): Promise<void> {
  if (positionals.length < 2) throw new UsageError(`--compare needs models and a TEXT\n${TOKENIZE_USAGE}`);
  const text = positionals[positionals.length - 1];
  const characters = [...text].length;
  const rows = [["model", "tokens", "chars/token", "pieces"]];
  for (const argument of positionals.slice(0, -1)) {
    const resolved = await resolveModelArgument(argument);
    const { file, tokenizer } = loadTokenizer(resolved.paths);
    try {
      const ids = tokenizer.encode(text, { addSpecial: false, parseSpecial: false });
      const pieces = ids.map((id) => displayPiece(tokenizer.tokenBytes(id)).replace(/\n/g, "\\n")).join("|");
      const name = resolved.name.split("/").pop()?.replace(/\.gguf$/i, "") ?? resolved.name;
      rows.push([name, String(ids.length), ids.length ? (characters / ids.length).toFixed(2) : "-", pieces]);
    } finally {
      file.close();
    }
  }
  process.stdout.write(`${JSON.stringify(text)}: ${characters} characters\n\n${formatTable(rows)}\n`);
}

export async function tokenizeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "no-bos": { type: "boolean" },
      special: { type: "boolean" },
      pieces: { type: "boolean" },
      batch: { type: "boolean" },
      compare: { type: "boolean" },
    },
  });
  if (values.compare) {
    await compareTokenizers(positionals);
    return;
  }
  const resolved = await resolveModelArgument(positionals[0]);
  const flags: TokenizeFlags = {
    addSpecial: !values["no-bos"],
    parseSpecial: values.special ?? false,
    pieces: values.pieces ?? false,
  };
  const { file, tokenizer } = loadTokenizer(resolved.paths);
  try {
    if (!values.batch) {
      const text = positionals[1];
      if (text === undefined) throw new UsageError(`missing TEXT\n${TOKENIZE_USAGE}`);
      process.stdout.write(`${render(tokenizer, text, flags)}\n`);
      return;
    }
    let lineNumber = 0;
    for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
      lineNumber++;
      if (line.trim() === "") continue;
      let text: unknown;
      try {
        text = JSON.parse(line);
      } catch {
        throw new UsageError(`stdin line ${lineNumber}: not valid JSON`);
      }
      if (typeof text !== "string") throw new UsageError(`stdin line ${lineNumber}: expected a JSON string`);
      process.stdout.write(`${render(tokenizer, text, flags)}\n`);
    }
  } finally {
    file.close();
  }
}
