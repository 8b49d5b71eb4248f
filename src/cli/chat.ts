import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setImmediate as nextTurn } from "node:timers/promises";
import { z } from "zod";
import { OutputParser, ParsedDelta } from "../chat/output-parser.js";
import { ChatMessage } from "../chat/template.js";
import { CachedSession, generate, GenerationStats } from "../engine/generate.js";
import { LoadedModel } from "../engine/load.js";
import { conversationTokens, opensReasoning } from "../engine/prompt.js";
import { Sampler, SamplingParams } from "../sampling/sampler.js";
import { storeLayout } from "../store/home.js";
import { describeModel } from "./show.js";

export interface ChatOptions {
  name: string;
  sampling: SamplingParams;
  /** Tokens an answer may take; negative: until end of generation or a full context. */
  maxTokens: number;
  contextSize?: number;
  system?: string;
  verbose: boolean;
  ignoreEos: boolean;
}

const HELP = `Available commands:
  /set parameter NAME VALUE   temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed, num_predict, num_ctx
  /set system TEXT            set the system message
  /set verbose | quiet        show or hide speed figures after each answer
  /show info | parameters | system | template
  /clear                      forget the conversation
  /save NAME  /load NAME      keep a conversation, and take it up again later
  /bye                        exit
  """                         begin and end a message of several lines
Ctrl-C stops an answer; Ctrl-D or /bye leaves.`;

const PARAMETERS: Record<string, keyof SamplingParams | "num_predict" | "num_ctx"> = {
  temperature: "temperature",
  top_k: "topK",
  top_p: "topP",
  min_p: "minP",
  repeat_penalty: "repeatPenalty",
  repeat_last_n: "repeatLastN",
  seed: "seed",
  num_predict: "num_predict",
  num_ctx: "num_ctx",
};

const SAVED_CONVERSATION = z.object({
  model: z.string(),
  system: z.string().optional(),
  messages: z.array(z.object({ role: z.enum(["system", "user", "assistant", "tool"]), content: z.string() })),
});

const CONVERSATION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The interactive chat of `tsllm run MODEL` on a terminal, with Ollama's commands. */
export async function chat(loaded: LoadedModel, options: ChatOptions): Promise<void> {
  const out = process.stdout;
  const note = (text: string): void => void out.write(`${text}\n`);
  let capacity = options.contextSize ?? Math.min(loaded.model.trainedContext, 4096);
  let session: CachedSession = { cache: loaded.model.createCache(capacity), tokens: [] };
  let system = options.system;
  let messages: ChatMessage[] = [];
  let maxTokens = options.maxTokens;
  let verbose = options.verbose;
  const sampling: SamplingParams = { ...options.sampling };
  const templated = loaded.chatTemplate !== undefined;
  let generation: { stop: boolean } | undefined;
  let pending: string[] | undefined; // the lines of a """ message so far

  const conversation = (): ChatMessage[] => (system ? [{ role: "system", content: system }, ...messages] : messages);

  /** The prompt for the conversation, the oldest turns dropped (and said so) until it leaves room for an answer. */
  const fitToContext = (): number[] | undefined => {
    const room = Math.min(maxTokens > 0 ? maxTokens : Math.floor(capacity / 4), Math.floor(capacity / 2));
    let tokens = conversationTokens(loaded, conversation());
    let dropped = 0;
    while (tokens.length + room > capacity && messages.length > 1) {
      messages.shift();
      dropped++;
      if (messages[0]?.role === "assistant") {
        messages.shift();
        dropped++;
      }
      tokens = conversationTokens(loaded, conversation());
    }
    if (dropped > 0) note(`[context full: dropped the ${dropped} oldest message${dropped > 1 ? "s" : ""} to stay within ${capacity} tokens]`);
    if (tokens.length >= capacity) {
      messages.pop();
      note(`[this message is ${tokens.length} tokens; the context holds ${capacity}: not sent]`);
      return undefined;
    }
    return tokens;
  };

  const answer = async (text: string): Promise<void> => {
    messages.push({ role: "user", content: text });
    const tokens = fitToContext();
    if (!tokens) return;
    const run = generate(loaded.model, loaded.tokenizer, tokens, {
      maxTokens: maxTokens < 0 ? Infinity : maxTokens,
      sampler: new Sampler(sampling),
      ignoreEos: options.ignoreEos,
      session,
    });
    generation = { stop: false };
    let reply = "";
    let stats: GenerationStats | undefined;
    // reasoning (<think> … </think>) is shown dimmed, the answer as it is
    const parser = new OutputParser({ startsInReasoning: opensReasoning(loaded.tokenizer, tokens) });
    const show = (delta: ParsedDelta): void => {
      if (delta.reasoning) out.write(`\x1b[2m${delta.reasoning}\x1b[22m`);
      if (delta.content) out.write(delta.content);
    };
    try {
      for (let step = run.next(); ; step = run.next()) {
        if (step.done) {
          stats = step.value;
          reply += stats.trailingText;
          show(parser.push(stats.trailingText));
          break;
        }
        reply += step.value.text;
        show(parser.push(step.value.text));
        await nextTurn(); // lets Ctrl-C through between tokens
        if (generation.stop) break;
      }
    } finally {
      generation = undefined;
    }
    show(parser.finish());
    out.write("\n");
    messages.push({ role: "assistant", content: reply });
    if (!stats) note("[stopped]");
    else if (stats.stopReason === "context") note(`[context full: the answer stopped at ${capacity} tokens; older turns are dropped next time]`);
    if (stats && verbose) {
      const rate = (n: number, ms: number): string => (ms > 0 ? (n / (ms / 1000)).toFixed(1) : "inf");
      const computed = stats.promptTokens - stats.reusedTokens;
      process.stderr.write(
        `prompt: ${stats.promptTokens} tokens (${stats.reusedTokens} from cache), ${rate(computed, stats.promptMs)} tok/s\n` +
          `generation: ${stats.generatedTokens} tokens, ${rate(stats.generatedTokens, stats.generationMs)} tok/s\n`,
      );
    }
  };

  const resetCache = (newCapacity = capacity): void => {
    session.cache.dispose();
    capacity = newCapacity;
    session = { cache: loaded.model.createCache(capacity), tokens: [] };
  };

  const setParameter = (name: string | undefined, value: string | undefined): void => {
    const key = name ? PARAMETERS[name] : undefined;
    const n = Number(value);
    if (!key || value === undefined || value.trim() === "" || !Number.isFinite(n)) {
      note(`Usage: /set parameter NAME VALUE with NAME one of ${Object.keys(PARAMETERS).join(", ")} and a number`);
      return;
    }
    if (key === "num_predict") maxTokens = n;
    else if (key === "num_ctx") {
      if (!Number.isInteger(n) || n < 16 || n > loaded.model.trainedContext) {
        note(`num_ctx must be a whole number from 16 to ${loaded.model.trainedContext}`);
        return;
      }
      resetCache(n);
    } else if (key !== "banned") (sampling[key] as number | undefined) = n;
    note(`Set parameter '${name}' to '${value}'`);
  };

  const conversationPath = (name: string | undefined): string | undefined => {
    if (!name || !CONVERSATION_NAME.test(name)) {
      note("Usage: /save NAME or /load NAME (letters, digits, '.', '_' and '-')");
      return undefined;
    }
    return join(storeLayout().conversations, `${name}.json`);
  };

  const command = (line: string): boolean => {
    const [word, sub, ...rest] = line.trim().split(/\s+/);
    switch (word) {
      case "/bye":
      case "/exit":
        return false;
      case "/?":
      case "/help":
        note(HELP);
        break;
      case "/clear":
        messages = [];
        session.tokens.length = 0;
        session.cache.truncate(0);
        note("Cleared session context");
        break;
      case "/set":
        if (sub === "parameter") setParameter(rest[0], rest[1]);
        else if (sub === "system") {
          system = line.trim().replace(/^\/set\s+system\s*/, "") || undefined;
          note(system ? "Set system message." : "Cleared system message.");
        } else if (sub === "verbose" || sub === "quiet") {
          verbose = sub === "verbose";
          note(`Set '${sub}' mode.`);
        } else note("Usage: /set parameter NAME VALUE | /set system TEXT | /set verbose | /set quiet");
        break;
      case "/show":
        if (sub === "info") {
          const rows = describeModel(loaded.file);
          const width = Math.max(...rows.map(([k]) => k.length));
          note([["model", options.name] as [string, string], ...rows].map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n"));
        } else if (sub === "parameters") {
          const shown = Object.entries(PARAMETERS).map(([ollamaName, key]) => {
            const value = key === "num_predict" ? maxTokens : key === "num_ctx" ? capacity : sampling[key];
            return `  ${ollamaName.padEnd(15)} ${value ?? "-"}`;
          });
          note(shown.join("\n"));
        } else if (sub === "system") note(system ?? "No system message was specified.");
        else if (sub === "template") note(loaded.chatTemplate?.source ?? "No chat template: messages are joined as plain text.");
        else note("Usage: /show info | parameters | system | template");
        break;
      case "/save": {
        const path = conversationPath(sub);
        if (!path) break;
        mkdirSync(storeLayout().conversations, { recursive: true });
        writeFileSync(path, `${JSON.stringify({ model: options.name, system, messages }, null, 2)}\n`);
        note(`Saved conversation '${sub}' (${messages.length} messages)`);
        break;
      }
      case "/load": {
        const path = conversationPath(sub);
        if (!path) break;
        let saved;
        try {
          saved = SAVED_CONVERSATION.parse(JSON.parse(readFileSync(path, "utf8")));
        } catch (error) {
          note(`Cannot load '${sub}': ${(error as { code?: string }).code === "ENOENT" ? "no such conversation" : "not a saved conversation"}`);
          break;
        }
        system = saved.system;
        messages = saved.messages;
        note(`Loaded conversation '${sub}' (${messages.length} messages)`);
        break;
      }
      default:
        note(`Unknown command '${word}'. Type /? for help`);
    }
    return true;
  };

  if (!templated) note("(this model has no chat template: each message continues the text so far)");
  const rl = createInterface({ input: process.stdin, output: out, terminal: true, historySize: 200 });
  const prompt = (): void => {
    rl.setPrompt(pending ? "... " : ">>> ");
    rl.prompt();
  };
  rl.on("SIGINT", () => {
    if (generation) {
      generation.stop = true;
      return;
    }
    if (pending || rl.line.length > 0) {
      pending = undefined;
      rl.write(null, { ctrl: true, name: "u" });
      out.write("\n");
    } else out.write("\nUse Ctrl + d or /bye to exit.\n");
    prompt();
  });
  prompt();
  try {
    for await (const line of rl) {
      if (pending) {
        const end = line.endsWith('"""');
        pending.push(end ? line.slice(0, -3) : line);
        if (end) {
          const text = pending.join("\n");
          pending = undefined;
          if (text.trim() !== "") await answer(text);
        }
      } else if (line.startsWith('"""')) {
        const body = line.slice(3);
        if (body.endsWith('"""') && body.length >= 3) await answer(body.slice(0, -3));
        else pending = body === "" ? [] : [body];
      } else if (line.startsWith("/")) {
        if (!command(line)) break;
      } else if (line.trim() !== "") {
        await answer(line);
      }
      prompt();
    }
  } finally {
    rl.close();
    session.cache.dispose();
  }
}
