import { describeFailure, UsageError } from "./fail.js";

type Command = (argv: string[]) => Promise<void>;

/**
 * Each command's module loads when the command runs: a command pays for its own dependencies only (the
 * server's, the chat templates'), which keeps start-up quick and a benchmark's resident memory its own.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import("./run.js")).runCommand,
  tokenize: async () => (await import("./tokenize.js")).tokenizeCommand,
  count: async () => (await import("./count.js")).countCommand,
  show: async () => (await import("./show.js")).showCommand,
  pull: async () => (await import("./pull.js")).pullCommand,
  serve: async () => (await import("./serve.js")).serveCommand,
  list: async () => (await import("./list.js")).listCommand,
  ls: async () => (await import("./list.js")).listCommand,
  rm: async () => (await import("./rm.js")).rmCommand,
  quantize: async () => (await import("./quantize.js")).quantizeCommand,
  fit: async () => (await import("./fit.js")).fitCommand,
  perplexity: async () => (await import("./perplexity.js")).perplexityCommand,
  bench: async () => (await import("./bench.js")).benchCommand,
  dev: async () => (await import("./dev.js")).devCommand,
};

async function usage(): Promise<string> {
  const [run, serve, pull, show, tokenize, count, quantize, fit, perplexity, bench] = await Promise.all([
    import("./run.js").then((m) => m.RUN_USAGE),
    import("./serve.js").then((m) => m.SERVE_USAGE),
    import("./pull.js").then((m) => m.PULL_USAGE),
    import("./show.js").then((m) => m.SHOW_USAGE),
    import("./tokenize.js").then((m) => m.TOKENIZE_USAGE),
    import("./count.js").then((m) => m.COUNT_USAGE),
    import("./quantize.js").then((m) => m.QUANTIZE_USAGE),
    import("./fit.js").then((m) => m.FIT_USAGE),
    import("./perplexity.js").then((m) => m.PERPLEXITY_USAGE),
    import("./bench.js").then((m) => m.BENCH_USAGE),
  ]);
  return `tsllm — fast local LLM inference in TypeScript

${run}

${serve}

${pull}

tsllm list                     models in the store: name, size, quant, parameters, modified
tsllm rm NAME                  delete a model and the files no other model uses
${show}

${tokenize}
${count}

${quantize}

${fit}

${perplexity}

${bench}
tsllm dev synth --preset NAME --type TYPE --vocab-from FILE.gguf -o OUT.gguf [--seed S]`;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(`${await usage()}\n`);
    return command ? 0 : 1;
  }
  const load = COMMANDS[command];
  try {
    if (!load) throw new UsageError(`unknown command '${command}' (try: tsllm help)`);
    await (await load())(rest);
    return 0;
  } catch (error) {
    const { message, expected } = describeFailure(error);
    process.stderr.write(`tsllm: ${expected ? message : `internal error: ${message}`}\n`);
    return 1;
  }
}
