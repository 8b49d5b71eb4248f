import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadTokenizer } from "../engine/load.js";
import { UsageError } from "./fail.js";
import { resolveModelArgument } from "./model-path.js";

export const COUNT_USAGE = `tsllm count MODEL [FILE|-] [--no-bos]   the number of tokens in a text (stdin when no FILE, or -)`;

export async function countCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { "no-bos": { type: "boolean" } } });
  if (positionals.length > 2) throw new UsageError(COUNT_USAGE);
  const resolved = await resolveModelArgument(positionals[0]);
  const source = positionals[1] ?? "-";
  let text: string;
  try {
    text = readFileSync(source === "-" ? 0 : source, "utf8");
  } catch {
    throw new UsageError(`${source}: cannot read`);
  }
  const { file, tokenizer } = loadTokenizer(resolved.paths);
  try {
    process.stdout.write(`${tokenizer.encode(text, { addSpecial: !values["no-bos"], parseSpecial: false }).length}\n`);
  } finally {
    file.close();
  }
}
