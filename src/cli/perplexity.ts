import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createBackend, loadModel } from "../engine/load.js";
import { perplexity } from "../engine/perplexity.js";
import { UsageError } from "./fail.js";
import { resolveModelArgument } from "./model-path.js";
import { backendOption, numberOption } from "./options.js";

export const PERPLEXITY_USAGE = `tsllm perplexity MODEL -f TEXT [-c 512] [--chunks N] [-b 512] [-t THREADS] [--backend wasm|scalar]
  llama-perplexity's method: chunks of -c tokens, the second half of each scored`;

export async function perplexityCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: "string", short: "f" },
      "ctx-size": { type: "string", short: "c" },
      chunks: { type: "string" },
      "batch-size": { type: "string", short: "b" },
      threads: { type: "string", short: "t" },
      backend: { type: "string", default: "wasm" },
    },
  });
  if (!values.file) throw new UsageError(`missing -f TEXT\n${PERPLEXITY_USAGE}`);
  let text: string;
  try {
    text = readFileSync(values.file === "-" ? 0 : values.file, "utf8");
  } catch {
    throw new UsageError(`${values.file}: cannot read`);
  }
  const contextSize = numberOption(values["ctx-size"], "-c", 512);
  if (!Number.isInteger(contextSize) || contextSize < 4) throw new UsageError("-c must be a whole number of at least 4");
  const resolved = await resolveModelArgument(positionals[0]);
  const threads = values.threads === undefined ? undefined : numberOption(values.threads, "--threads", 1);
  const loaded = loadModel(resolved.paths, createBackend(backendOption(values.backend), threads));
  try {
    if (contextSize > loaded.model.trainedContext) throw new UsageError(`-c ${contextSize} is longer than the model's context (${loaded.model.trainedContext})`);
    const tokens = loaded.tokenizer.encode(text, { addSpecial: true, parseSpecial: false });
    const addsBos = tokens[0] === loaded.tokenizer.vocab.specials.bos;
    const run = perplexity(loaded.model, tokens, {
      contextSize,
      maxChunks: values.chunks === undefined ? undefined : numberOption(values.chunks, "--chunks", 0),
      batchSize: numberOption(values["batch-size"], "-b", 512),
      bos: addsBos ? loaded.tokenizer.vocab.specials.bos : undefined,
    });
    const chunkCount = Math.floor(tokens.length / contextSize);
    process.stderr.write(`perplexity: ${tokens.length} tokens, ${chunkCount} chunks of ${contextSize}, scoring the second half of each\n`);
    const started = performance.now();
    for (let step = run.next(); ; step = run.next()) {
      if (step.done) {
        const { perplexity: ppl, uncertainty, scoredTokens } = step.value;
        const seconds = (performance.now() - started) / 1000;
        process.stdout.write(`\nFinal estimate: PPL = ${ppl.toFixed(4)} +/- ${uncertainty.toFixed(5)}\n`);
        process.stderr.write(`scored ${scoredTokens} tokens in ${seconds.toFixed(1)} s\n`);
        break;
      }
      process.stdout.write(`[${step.value.index}]${step.value.runningPerplexity.toFixed(4)},`);
    }
  } finally {
    loaded.file.close();
    loaded.backend.dispose?.();
  }
}
