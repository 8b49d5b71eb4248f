import { parseArgs } from "node:util";
import { storeLayout } from "../store/home.js";
import { removeModel } from "../store/manifest.js";
import { parseReference } from "../store/reference.js";
import { findStoredModel } from "../store/resolve.js";
import { UsageError } from "./fail.js";
import { formatBytes } from "./format.js";

export async function rmCommand(argv: string[]): Promise<void> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length === 0) throw new UsageError("usage: tsllm rm NAME [NAME …]");
  const layout = storeLayout();
  for (const text of positionals) {
    const model = findStoredModel(layout, parseReference(text), text);
    if (!model) throw new UsageError(`model '${text}' is not in the store (see tsllm list)`);
    const freed = removeModel(layout, model);
    process.stdout.write(`deleted '${model.name}' (${formatBytes(freed)} freed)\n`);
  }
}
