import { BENCH_USAGE, benchCommand } from "./bench.js";
import { describeFailure, UsageError } from "./fail.js";
import { COUNT_USAGE, countCommand } from "./count.js";
import { devCommand } from "./dev.js";
import { FIT_USAGE, fitCommand } from "./fit.js";
import { RUN_USAGE, runCommand } from "./run.js";
import { SERVE_USAGE, serveCommand } from "./serve.js";
import { listCommand } from "./list.js";
import { PERPLEXITY_USAGE, perplexityCommand } from "./perplexity.js";
import { PULL_USAGE, pullCommand } from "./pull.js";
import { QUANTIZE_USAGE, quantizeCommand } from "./quantize.js";
import { rmCommand } from "./rm.js";
import { SHOW_USAGE, showCommand } from "./show.js";
import { TOKENIZE_USAGE, tokenizeCommand } from "./tokenize.js";

const USAGE = `tsllm — fast local LLM inference in TypeScript

${RUN_USAGE}

${SERVE_USAGE}

${PULL_USAGE}

tsllm list                     models in the store: name, size, quant, parameters, modified
tsllm rm NAME                  delete a model and the files no other model uses
${SHOW_USAGE}

${TOKENIZE_USAGE}
${COUNT_USAGE}

${QUANTIZE_USAGE}

${FIT_USAGE}

${PERPLEXITY_USAGE}

${BENCH_USAGE}
tsllm dev synth --preset NAME --type TYPE --vocab-from FILE.gguf -o OUT.gguf [--seed S]`;

const COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  run: runCommand,
  tokenize: tokenizeCommand,
  count: countCommand,
  show: showCommand,
  pull: pullCommand,
  serve: serveCommand,
  list: listCommand,
  ls: listCommand,
  rm: rmCommand,
  quantize: quantizeCommand,
  fit: fitCommand,
  perplexity: perplexityCommand,
  bench: benchCommand,
  dev: devCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 1;
  }
  const handler = COMMANDS[command];
  try {
    if (!handler) throw new UsageError(`unknown command '${command}' (try: tsllm help)`);
    await handler(rest);
    return 0;
  } catch (error) {
    const { message, expected } = describeFailure(error);
    process.stderr.write(`tsllm: ${expected ? message : `internal error: ${message}`}\n`);
    return 1;
  }
}
