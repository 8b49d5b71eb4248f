import { parseArgs } from "node:util";
import { GgmlType, ggmlTypeFromName } from "../gguf/ggml-types.js";
import { GgufFile } from "../gguf/reader.js";
import { isSupportedType } from "../quant/index.js";
import { PRESETS } from "../synth/presets.js";
import { quantPlanNamed } from "../synth/mix.js";
import { SYNTH_ARCHITECTURES, synthesizeModel } from "../synth/synth.js";
import { UsageError } from "./fail.js";
import { requireModelFile } from "./model-path.js";
import { numberOption } from "./options.js";
import { formatCount } from "./format.js";

const WEIGHT_TYPES = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K]);

async function synthCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: "string", default: "llama" },
      preset: { type: "string", default: "small" },
      type: { type: "string", default: "F32" },
      "vocab-from": { type: "string" },
      output: { type: "string", short: "o" },
      seed: { type: "string" },
    },
  });
  const arch = SYNTH_ARCHITECTURES.find((a) => a === values.arch);
  if (!arch) throw new UsageError(`--arch ${values.arch} is not supported yet (${SYNTH_ARCHITECTURES.join(", ")} are)`);
  const shape = PRESETS[values.preset];
  if (!shape) throw new UsageError(`unknown --preset ${values.preset} (known: ${Object.keys(PRESETS).join(", ")})`);
  const writable = (name: string): GgmlType | undefined => {
    const type = ggmlTypeFromName(name);
    return type !== undefined && WEIGHT_TYPES.has(type) && isSupportedType(type) ? type : undefined;
  };
  const quant = quantPlanNamed(values.type, writable);
  if (!quant) throw new UsageError(`--type ${values.type} is not a weight type or mix we can write (types: F32, F16, BF16, Q4_0 … Q6_K; mixes: Q4_K_M)`);
  if (!values.output) throw new UsageError("missing -o OUT.gguf");
  const vocabFrom = GgufFile.open(requireModelFile(values["vocab-from"]));
  try {
    const started = performance.now();
    const result = synthesizeModel(values.output, { architecture: arch, shape, quant, vocabFrom, seed: numberOption(values.seed, "--seed", 1) });
    process.stderr.write(
      `wrote ${values.output}: ${result.tensors} tensors, ${formatCount(result.parameters)} parameters, ${values.type}, ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
  } finally {
    vocabFrom.close();
  }
}

export async function devCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === "synth") return synthCommand(rest);
  throw new UsageError("usage: tsllm dev synth --preset NAME --type TYPE --vocab-from FILE.gguf -o OUT.gguf");
}
