import { parseArgs } from "node:util";
import { ChatMessage } from "../chat/template.js";
import { generate, GeneratedToken } from "../engine/generate.js";
import { createBackend, LoadedModel, loadModel } from "../engine/load.js";
import { DEFAULT_SAMPLING, Sampler } from "../sampling/sampler.js";
import { UsageError } from "./fail.js";
import { requireModelFile } from "./model-path.js";
import { backendOption, numberOption } from "./options.js";

export const RUN_USAGE = `tsllm run MODEL.gguf "PROMPT" [options]
  -n, --max-tokens N     tokens to generate (default 256)
  -c, --ctx-size N       context size (default: the model's, at most 4096)
  --temp T               temperature; 0 is greedy (default 0.8)
  --top-k K  --top-p P  --min-p P  --repeat-penalty R  --seed S
  --ignore-eos           keep generating past end-of-generation tokens
  --raw                  no chat template (models without one are always raw)
  --system TEXT          system prompt (chat template only)
  --json                 print {"prompt_tokens","tokens","text"} instead of streaming text
  --logprobs K           with --json: the top K log-probabilities of each generated token
  --backend wasm|scalar  compute backend (default wasm; scalar is the reference twin)
  -t, --threads N        threads for the wasm backend (default: the number of cores)`;

/**
 * The prompt as tokens: through the chat template unless raw, with BOS as the metadata says (never
 * doubled). Message contents are rendered as placeholders first, so that control-token text typed by
 * the user stays plain text while the template's own markers become control tokens.
 */
export function promptTokens(loaded: LoadedModel, prompt: string, raw: boolean, system?: string): number[] {
  const { tokenizer, chatTemplate } = loaded;
  if (raw || !chatTemplate) return tokenizer.encode(prompt, { addSpecial: true, parseSpecial: false });
  const messages: ChatMessage[] = system ? [{ role: "system", content: system }] : [];
  messages.push({ role: "user", content: prompt });
  const placeholder = (i: number): string => `\u0000tsllm-message-${i}\u0000`;
  const { bos, eos } = tokenizer.vocab.specials;
  const bosText = bos !== undefined ? tokenizer.vocab.pieces[bos] : "";
  const rendered = chatTemplate.render(
    messages.map((m, i) => ({ ...m, content: placeholder(i) })),
    { bosToken: bosText, eosToken: eos !== undefined ? tokenizer.vocab.pieces[eos] : "" },
  );
  const parts: { text: string; parseSpecial: boolean }[] = [];
  let rest = rendered;
  messages.forEach((message, i) => {
    const [before, after] = rest.split(placeholder(i));
    if (after === undefined) throw new Error("the chat template did not render every message");
    parts.push({ text: before, parseSpecial: true }, { text: message.content, parseSpecial: false });
    rest = after;
  });
  parts.push({ text: rest, parseSpecial: true });
  const templateWroteBos = bosText !== "" && rendered.startsWith(bosText);
  return tokenizer.encodeParts(parts, !templateWroteBos);
}

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
    },
  });
  const [modelArg, prompt] = positionals;
  const path = requireModelFile(modelArg);
  if (prompt === undefined) throw new UsageError(`missing PROMPT\n${RUN_USAGE}`);
  const threads = values.threads === undefined ? undefined : numberOption(values.threads, "--threads", 1);
  const loaded = loadModel(path, createBackend(backendOption(values.backend), threads));
  const tokens = promptTokens(loaded, prompt, values.raw ?? false, values.system);
  const ignoreEos = values["ignore-eos"] ?? false;
  const sampler = new Sampler({
    ...DEFAULT_SAMPLING,
    temperature: numberOption(values.temp, "--temp", DEFAULT_SAMPLING.temperature),
    topK: numberOption(values["top-k"], "--top-k", DEFAULT_SAMPLING.topK),
    topP: numberOption(values["top-p"], "--top-p", DEFAULT_SAMPLING.topP),
    minP: numberOption(values["min-p"], "--min-p", DEFAULT_SAMPLING.minP),
    repeatPenalty: numberOption(values["repeat-penalty"], "--repeat-penalty", DEFAULT_SAMPLING.repeatPenalty),
    seed: values.seed === undefined ? undefined : numberOption(values.seed, "--seed", 0),
    banned: ignoreEos ? loaded.tokenizer.vocab.endOfGeneration : undefined,
  });
  const logprobs = values.logprobs === undefined ? undefined : numberOption(values.logprobs, "--logprobs", 0);
  const ctx = values["ctx-size"] === undefined ? undefined : numberOption(values["ctx-size"], "--ctx-size", 0);
  const run = generate(loaded.model, loaded.tokenizer, tokens, {
    maxTokens: numberOption(values["max-tokens"], "--max-tokens", 256),
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
