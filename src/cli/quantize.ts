import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { ggmlTypeName } from "../gguf/ggml-types.js";
import { openModelFile } from "../engine/load.js";
import { QUANT_TARGET_NAMES, quantTarget } from "../quantize/file-types.js";
import { quantizeModel } from "../quantize/quantize.js";
import { UsageError } from "./fail.js";
import { formatBytes } from "./format.js";
import { resolveModelArgument } from "./model-path.js";
import { itemProgress } from "./progress.js";

export const QUANTIZE_USAGE = `tsllm quantize IN OUT.gguf TYPE [--pure] [--allow-requantize]
  TYPE: ${QUANT_TARGET_NAMES.join(", ")}; the mixes use llama-quantize's per-tensor rules, --pure one type everywhere`;

export async function quantizeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { pure: { type: "boolean" }, "allow-requantize": { type: "boolean" } },
  });
  const [inArg, outPath, typeName] = positionals;
  if (!inArg || !outPath || !typeName || positionals.length > 3) throw new UsageError(QUANTIZE_USAGE);
  const target = quantTarget(typeName);
  if (!target) throw new UsageError(`unknown TYPE '${typeName}' (one of ${QUANT_TARGET_NAMES.join(", ")})`);
  const resolved = await resolveModelArgument(inArg);
  if (resolved.paths.includes(outPath)) throw new UsageError("OUT must differ from the input");
  const input = openModelFile(resolved.paths);
  const before = resolved.paths.reduce((sum, p) => sum + statSync(p).size, 0);
  const progress = itemProgress(`quantizing to ${target.name}`, input.tensors.length);
  let result;
  try {
    result = quantizeModel(input, outPath, target, {
      pure: values.pure ?? false,
      allowRequantize: values["allow-requantize"] ?? false,
      onTensor: (done, _total, name, type) => progress.update(done, `${name} → ${ggmlTypeName(type)}`),
    });
  } finally {
    progress.stop();
    input.close();
  }
  const counts = new Map<string, number>();
  for (const type of result.types.values()) counts.set(ggmlTypeName(type), (counts.get(ggmlTypeName(type)) ?? 0) + 1);
  const mix = [...counts].sort((a, b) => b[1] - a[1]).map(([type, n]) => `${type} ×${n}`).join(", ");
  process.stderr.write(
    `wrote ${outPath}: ${formatBytes(before)} → ${formatBytes(statSync(outPath).size)} (${mix})` +
      `${result.fallbacks ? `; ${result.fallbacks} tensor(s) fell back to another type` : ""}\n`,
  );
}
