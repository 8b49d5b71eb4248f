import { parseArgs } from "node:util";
import { storeLayout } from "../store/home.js";
import { listStoredModels, modelSize } from "../store/manifest.js";
import { formatAge, formatBytes, formatCount, formatTable } from "./format.js";

export async function listCommand(argv: string[]): Promise<void> {
  parseArgs({ args: argv, options: {} });
  const models = listStoredModels(storeLayout(), (problem) => process.stderr.write(`tsllm: skipping ${problem}\n`));
  const rows = [["NAME", "SIZE", "QUANT", "PARAMETERS", "MODIFIED"]];
  for (const { name, manifest, modified } of models) {
    rows.push([name, formatBytes(modelSize(manifest)), manifest.quant, formatCount(manifest.parameters), formatAge(modified)]);
  }
  process.stdout.write(`${formatTable(rows)}\n`);
}
