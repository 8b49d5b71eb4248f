import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { loadTokenizer } from "../engine/load.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { UsageError } from "./fail.js";
import { resolveModelArgument } from "./model-path.js";

export const TOKENIZE_USAGE = `tsllm tokenize MODEL.gguf "TEXT" [--no-bos] [--special] [--pieces]
tsllm tokenize MODEL.gguf --batch   < lines.jsonl   (one JSON string per line in, one id array per line out)`;

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

export async function tokenizeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "no-bos": { type: "boolean" },
      special: { type: "boolean" },
      pieces: { type: "boolean" },
      batch: { type: "boolean" },
    },
  });
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
