import { parseArgs } from "node:util";
import { generate, GeneratedToken } from "../engine/generate.js";
import { createBackend, loadModel } from "../engine/load.js";
import { promptTokens } from "../engine/prompt.js";
import { DEFAULT_SAMPLING, Sampler, SamplingParams } from "../sampling/sampler.js";
import { chat } from "./chat.js";
import { UsageError } from "./fail.js";
import { resolveModelArgument } from "./model-path.js";
import { backendOption, numberOption } from "./options.js";

export const RUN_USAGE = `tsllm run MODEL ["PROMPT"] [options]
  MODEL is a .gguf path, a name from \`tsllm list\` or a TSLLM_MODELS folder, OWNER/REPO[:QUANT] or
  hf:OWNER/REPO/FILE.gguf (pulled when missing). Without a PROMPT: an interactive chat on a terminal,
  otherwise the prompt is read from stdin.
  -n, --max-tokens N     tokens to generate (default 256; unlimited in the chat)
  -c, --ctx-size N       context size (default: the model's, at most 4096)
  --temp T               temperature; 0 is greedy (default 0.8)
  --top-k K  --top-p P  --min-p P  --repeat-penalty R  --seed S
  --ignore-eos           keep generating past end-of-generation tokens
  --raw                  no chat template (models without one are always raw)
  --system TEXT          system prompt (chat template only)
  --json                 print {"prompt_tokens","tokens","text"} instead of streaming text
  --logprobs K           with --json: the top K log-probabilities of each generated token
  --backend wasm|scalar  compute backend (default wasm; scalar is the reference twin)
  -t, --threads N        threads for the wasm backend (default: the number of cores)
  --verbose              chat: prompt and generation speed after each answer`;

export async function runCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "max-tokens": { type: "string", short: "n" },
      "ctx-size": { type: "string", short: "c" },
      temp: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      "min-p": { type: "string" },
      "repeat-penalty": { type: "string" },
      seed: { type: "string" },
      "ignore-eos": { type: "boolean" },
      raw: { type: "boolean" },
      system: { type: "string" },
      json: { type: "boolean" },
      logprobs: { type: "string" },
      backend: { type: "string", default: "wasm" },
      threads: { type: "string", short: "t" },
      verbose: { type: "boolean" },
    },
  });
  const [modelArg, promptArg] = positionals;
  const resolved = await resolveModelArgument(modelArg);
  const threads = values.threads === undefined ? undefined : numberOption(values.threads, "--threads", 1);
  const loaded = loadModel(resolved.paths, createBackend(backendOption(values.backend), threads));
  const ignoreEos = values["ignore-eos"] ?? false;
  const sampling: SamplingParams = {
    ...DEFAULT_SAMPLING,
    temperature: numberOption(values.temp, "--temp", DEFAULT_SAMPLING.temperature),
    topK: numberOption(values["top-k"], "--top-k", DEFAULT_SAMPLING.topK),
    topP: numberOption(values["top-p"], "--top-p", DEFAULT_SAMPLING.topP),
    minP: numberOption(values["min-p"], "--min-p", DEFAULT_SAMPLING.minP),
    repeatPenalty: numberOption(values["repeat-penalty"], "--repeat-penalty", DEFAULT_SAMPLING.repeatPenalty),
    seed: values.seed === undefined ? undefined : numberOption(values.seed, "--seed", 0),
    banned: ignoreEos ? loaded.tokenizer.vocab.endOfGeneration : undefined,
  };
  const maxTokens = numberOption(values["max-tokens"], "--max-tokens", promptArg === undefined ? -1 : 256);
  const ctx = values["ctx-size"] === undefined ? undefined : numberOption(values["ctx-size"], "--ctx-size", 0);
  if (promptArg === undefined && process.stdin.isTTY) {
    try {
      await chat(loaded, { name: resolved.name, sampling, maxTokens, contextSize: ctx, system: values.system, verbose: values.verbose ?? false, ignoreEos });
    } finally {
      loaded.file.close();
      loaded.backend.dispose?.();
    }
    return;
  }
  const prompt = promptArg ?? (await readAll(process.stdin));
  if (prompt === "") throw new UsageError("missing PROMPT: give one, pipe one on stdin, or run on a terminal to chat");
  const tokens = promptTokens(loaded, prompt, values.raw ?? false, values.system);
  const sampler = new Sampler(sampling);
  const logprobs = values.logprobs === undefined ? undefined : numberOption(values.logprobs, "--logprobs", 0);
  const run = generate(loaded.model, loaded.tokenizer, tokens, {
    maxTokens: maxTokens < 0 ? Infinity : maxTokens,
    sampler,
    ignoreEos,
    logprobs,
    contextSize: ctx,
  });
  const generated: GeneratedToken[] = [];
  let text = "";
  for (let step = run.next(); ; step = run.next()) {
    if (step.done) {
      const stats = step.value;
      text += stats.trailingText;
      if (values.json) {
        const result: Record<string, unknown> = { prompt_tokens: tokens, tokens: generated.map((g) => g.id), text };
        if (logprobs) result.logprobs = generated.map((g) => g.logprobs);
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        process.stdout.write(`${stats.trailingText}\n`);
      }
      const rate = (n: number, ms: number): string => (ms > 0 ? (n / (ms / 1000)).toFixed(1) : "inf");
      process.stderr.write(
        `prompt ${stats.promptTokens} tokens (${rate(stats.promptTokens, stats.promptMs)} tok/s), ` +
          `generated ${stats.generatedTokens} tokens (${rate(stats.generatedTokens, stats.generationMs)} tok/s), ` +
          `load ${loaded.loadMs.toFixed(0)} ms, stop: ${stats.stopReason}\n`,
      );
      break;
    }
    generated.push(step.value);
    text += step.value.text;
    if (!values.json) process.stdout.write(step.value.text);
  }
  loaded.file.close();
  loaded.backend.dispose?.();
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8").replace(/\n$/, "");
}
