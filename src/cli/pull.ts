import { parseArgs } from "node:util";
import { hubFromEnvironment } from "../store/hub.js";
import { storeLayout } from "../store/home.js";
import { modelName, modelSize } from "../store/manifest.js";
import { hubReferenceOf, pullModel } from "../store/pull.js";
import { parseReference } from "../store/reference.js";
import { UsageError } from "./fail.js";
import { formatBytes } from "./format.js";
import { pullProgress } from "./progress.js";

export const PULL_USAGE = `tsllm pull OWNER/REPO[:QUANT] | hf:OWNER/REPO/FILE.gguf | NAME
  downloads into $TSLLM_HOME (default ~/.tsllm) from $HF_ENDPOINT (default https://huggingface.co),
  sending $HF_TOKEN when set; an interrupted pull resumes where it stopped`;

export async function pullCommand(argv: string[]): Promise<void> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError(`expected one model reference\n${PULL_USAGE}`);
  const reference = hubReferenceOf(parseReference(positionals[0]));
  if (!reference) throw new UsageError(`'${positionals[0]}' is not a hub reference (OWNER/REPO[:QUANT] or hf:OWNER/REPO/FILE.gguf)`);
  const progress = pullProgress();
  try {
    const manifest = await pullModel(reference, { hub: hubFromEnvironment(), layout: storeLayout(), onProgress: progress.onProgress });
    progress.stop();
    process.stderr.write(`verified sha256 and saved ${modelName(manifest)} (${formatBytes(modelSize(manifest))})\n`);
  } finally {
    progress.stop();
  }
}
