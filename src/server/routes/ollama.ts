import { statSync } from "node:fs";
import { Context, Hono } from "hono";
import { stream as honoStream } from "hono/streaming";
import { z } from "zod";
import { OutputParser } from "../../chat/output-parser.js";
import { ChatMessage } from "../../chat/template.js";
import { conversationTokens, opensReasoning, promptTokens } from "../../engine/prompt.js";
import { GenerationEvent, GenerationSummary } from "../../engine/scheduler.js";
import { Metadata } from "../../gguf/metadata.js";
import { openModelFile } from "../../engine/load.js";
import { storeLayout } from "../../store/home.js";
import { hubFromEnvironment } from "../../store/hub.js";
import { modelName, modelSize, removeModel } from "../../store/manifest.js";
import { ModelSummary, summarizeModel } from "../../store/model-summary.js";
import { hubReferenceOf, pullModel } from "../../store/pull.js";
import { StoreError } from "../../store/errors.js";
import { ModelReference, parseReference } from "../../store/reference.js";
import { findStoredModel } from "../../store/resolve.js";
import { Tokenizer } from "../../tokenizer/tokenizer.js";
import { ApiError } from "../errors.js";
import { abortWithClient, samplingFrom, submit } from "../generation.js";
import { Metrics } from "../metrics.js";
import { ModelPool, ServedModel, UnknownModelError } from "../model-pool.js";
import { NO_SUFFIX, parseBody } from "../validate.js";

export const OLLAMA_VERSION = "0.6.4";

/** Ollama's option names. */
const OPTIONS = z
  .looseObject({
    temperature: z.number().min(0).optional(),
    // 0 or less: every token, as llama.cpp's top-k takes it (Ollama clients send -1)
    top_k: z.number().int().optional(),
    top_p: z.number().min(0).max(1).optional(),
    min_p: z.number().min(0).max(1).optional(),
    num_predict: z.number().int().optional(),
    stop: z.array(z.string()).optional(),
    seed: z.number().int().optional(),
    repeat_penalty: z.number().optional(),
    repeat_last_n: z.number().int().optional(),
    presence_penalty: z.number().optional(),
    frequency_penalty: z.number().optional(),
  })
  .optional();

const KEEP_ALIVE = z.union([z.number(), z.string()]).optional();

const COMMON = { model: z.string().min(1), stream: z.boolean().optional(), options: OPTIONS, keep_alive: KEEP_ALIVE, format: z.unknown().optional() };
// Refused rather than ignored: an answer that silently leaves out the images is not the one asked for.
const NO_IMAGES = z.array(z.string()).max(0, "the models served here read text only").optional().nullable();

const GENERATE = z.looseObject({
  ...COMMON,
  prompt: z.string().optional(),
  system: z.string().optional(),
  raw: z.boolean().optional(),
  images: NO_IMAGES,
  suffix: NO_SUFFIX,
  // the token ids a previous answer returned (Ollama's deprecated conversational memory)
  context: z.array(z.number().int().min(0)).optional(),
});
const OLLAMA_TOOL_CALL = z.looseObject({ function: z.looseObject({ name: z.string(), arguments: z.record(z.string(), z.unknown()) }) });
const CHAT = z.looseObject({
  ...COMMON,
  messages: z.array(
    z.looseObject({
      role: z.enum(["system", "user", "assistant", "tool"]),
      content: z.string().optional().default(""),
      tool_calls: z.array(OLLAMA_TOOL_CALL).optional(),
      tool_name: z.string().optional(),
      images: NO_IMAGES,
    }),
  ),
  tools: z.array(z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string().min(1).max(256) }) })).max(128).optional(),
  think: z.boolean().optional(),
});
const NAMED = z.looseObject({ model: z.string().min(1).optional(), name: z.string().min(1).optional(), stream: z.boolean().optional() });

/** keep_alive as Ollama takes it: seconds as a number, or "5m", "30s", "1h", "-1"; negative is forever. */
export function keepAliveMs(value: number | string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === "number") return value < 0 ? -1 : value * 1000;
  const match = /^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new ApiError(400, `keep_alive: cannot read '${value}' (use 5m, 30s, 1h, 0 or -1)`, "invalid_request", "keep_alive");
  const n = Number(match[1]);
  if (n < 0) return -1;
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"];
}

const ns = (ms: number): number => Math.round(ms * 1e6);

/** A model file's summary, read from its header once rather than on every /api/tags and /api/ps. */
const summaries = new WeakMap<ServedModel["resolved"], ModelSummary>();

function summaryOf(served: ServedModel): ModelSummary | undefined {
  const { manifest, paths } = served.resolved;
  if (manifest) return manifest;
  if (paths.length === 0) return undefined;
  let summary = summaries.get(served.resolved);
  if (!summary) {
    const file = openModelFile(paths);
    try {
      summary = summarizeModel(file);
    } finally {
      file.close();
    }
    summaries.set(served.resolved, summary);
  }
  return summary;
}

function details(served: ServedModel): Record<string, unknown> {
  const summary = summaryOf(served);
  const parameters = summary?.parameters ?? 0;
  const size = parameters >= 1e9 ? `${(parameters / 1e9).toFixed(1)}B` : `${(parameters / 1e6).toFixed(1)}M`;
  return { format: "gguf", family: summary?.architecture ?? "unknown", families: [summary?.architecture ?? "unknown"], parameter_size: size, quantization_level: summary?.quant ?? "unknown" };
}

/** The model's bytes on disk, as Ollama's tags and ps report them: the store's record, or the files served by path. */
function fileSize(served: ServedModel): number {
  const { manifest, paths } = served.resolved;
  if (manifest) return modelSize(manifest);
  try {
    return paths.reduce((sum, path) => sum + statSync(path).size, 0);
  } catch {
    return 0; // a file removed while served: its size is no longer known
  }
}

/** The Ollama-compatible API: /api/generate, /api/chat, /api/tags, /api/show, /api/ps, /api/delete, /api/pull, /api/version. */
export function ollamaRoutes(pool: ModelPool, metrics: Metrics, defaultKeepAliveMs: number): Hono {
  const app = new Hono();

  app.get("/api/version", (c) => c.json({ version: OLLAMA_VERSION }));

  app.get("/api/tags", (c) =>
    c.json({
      models: pool.list().map((m) => ({
        name: m.name,
        model: m.name,
        modified_at: m.resolved.manifest?.pulledAt ?? new Date(0).toISOString(),
        size: fileSize(m),
        digest: m.resolved.manifest?.files[0].sha256 ?? "",
        details: details(m),
      })),
    }),
  );

  app.get("/api/ps", (c) =>
    c.json({
      models: pool.loaded().map((m) => ({
        name: m.name,
        model: m.name,
        size: fileSize(m),
        digest: m.resolved.manifest?.files[0].sha256 ?? "",
        details: details(m),
        expires_at: new Date(Math.min(m.loaded?.expiresAt ?? 0, 8.64e15)).toISOString(),
        size_vram: 0,
      })),
    }),
  );

  const acquire = async (name: string, keepAlive: number | string | undefined) =>
    pool.acquire(name, keepAliveMs(keepAlive, defaultKeepAliveMs)).catch((error: unknown) => {
      if (error instanceof UnknownModelError) throw new ApiError(404, `model "${name}" not found, try pulling it first`, "model_not_found");
      throw error;
    });

  app.post("/api/show", async (c) => {
    const body = parseBody(NAMED, await c.req.json().catch(() => undefined));
    const name = body.model ?? body.name;
    if (!name) throw new ApiError(400, "model is required", "invalid_request", "model");
    const served = pool.list().find((m) => m.name === name) ?? (await acquire(name, 0));
    const file = openModelFile(served.resolved.paths.length > 0 ? served.resolved.paths : (await acquire(name, 0)).resolved.paths);
    try {
      const meta = new Metadata(file.metadata);
      const info: Record<string, unknown> = {};
      for (const [key, entry] of file.metadata) {
        if (key.startsWith("tokenizer.ggml.") && entry.type === 9) continue; // vocab arrays are large; Ollama leaves them out too
        info[key] = typeof entry.value === "bigint" ? Number(entry.value) : entry.value;
      }
      return c.json({ license: "", modelfile: `FROM ${served.resolved.paths[0]}`, parameters: "", template: meta.string("tokenizer.chat_template") ?? "", details: details(served), model_info: info, modified_at: served.resolved.manifest?.pulledAt });
    } finally {
      file.close();
    }
  });

  app.delete("/api/delete", async (c) => {
    const body = parseBody(NAMED, await c.req.json().catch(() => undefined));
    const name = body.model ?? body.name ?? "";
    const layout = storeLayout();
    const stored = findStoredModel(layout, referenceIn(name), name);
    if (!stored) throw new ApiError(404, `model '${name}' not found`, "model_not_found");
    pool.forget(stored.name);
    removeModel(layout, stored);
    return c.body(null, 200);
  });

  app.post("/api/pull", async (c) => {
    const body = parseBody(NAMED, await c.req.json().catch(() => undefined));
    const name = body.model ?? body.name ?? "";
    const reference = hubReferenceOf(referenceIn(name));
    if (!reference) throw new ApiError(400, `'${name}' is not a hub reference (OWNER/REPO[:QUANT] or hf:OWNER/REPO/FILE.gguf)`, "invalid_request", "model");
    const pull = (onProgress: (line: Record<string, unknown>) => void) =>
      pullModel(reference, {
        hub: hubFromEnvironment(),
        layout: storeLayout(),
        onProgress: (p) => onProgress({ status: `pulling ${p.file}`, digest: p.file, total: p.total, completed: p.received }),
      });
    if (body.stream === false) {
      try {
        await pull(() => undefined);
      } catch (error) {
        // as Ollama answers a failed pull: 500, with what went wrong
        if (error instanceof StoreError) throw new ApiError(500, error.message, "pull_failed");
        throw error;
      }
      return c.json({ status: "success" });
    }
    return honoStream(c, async (out) => {
      const write = (line: Record<string, unknown>) => out.write(`${JSON.stringify(line)}\n`);
      await write({ status: "pulling manifest" });
      let last = 0;
      try {
        const manifest = await pull((line) => {
          if (Date.now() - last > 200 || line.completed === line.total) {
            last = Date.now();
            void write(line);
          }
        });
        await write({ status: "verifying sha256 digest" });
        await write({ status: "writing manifest" });
        await write({ status: "success", model: modelName(manifest) });
      } catch (error) {
        await write({ error: (error as Error).message });
      }
    });
  });

  /** NDJSON lines from a generation, or one JSON object when stream is false. */
  const respond = async (
    c: Context,
    served: Awaited<ReturnType<typeof acquire>>,
    events: AsyncIterable<GenerationEvent>,
    abort: AbortController,
    stream: boolean,
    started: number,
    shape: (text: string, done: boolean) => Record<string, unknown>,
    closing: (generated: number[]) => Record<string, unknown> = () => ({}),
  ) => {
    // the ids of the answer's tokens, for `closing` (the final line's extra fields)
    const generated: number[] = [];
    const final = (summary: GenerationSummary) => ({
      done_reason: summary.finishReason === "length" ? "length" : "stop",
      total_duration: ns(performance.now() - started),
      load_duration: ns(served.loaded.loadMs),
      prompt_eval_count: summary.promptTokens,
      prompt_eval_duration: ns(summary.promptMs),
      eval_count: summary.generatedTokens,
      eval_duration: ns(summary.generationMs),
    });
    const base = () => ({ model: served.name, created_at: new Date().toISOString() });
    if (!stream) {
      let text = "";
      try {
        for await (const event of events) {
          if (event.type === "token") {
            text += event.text;
            generated.push(event.id);
          } else {
            metrics.observe(event.stats);
            return c.json({ ...base(), ...shape(text, true), done: true, ...final(event.stats), ...closing(generated) });
          }
        }
      } finally {
        pool.release(served);
      }
      throw new ApiError(503, "the model was unloaded while answering", "model_unloaded");
    }
    return honoStream(c, async (out) => {
      out.onAbort(() => abort.abort());
      try {
        for await (const event of events) {
          if (event.type === "token") {
            generated.push(event.id);
            await out.write(`${JSON.stringify({ ...base(), ...shape(event.text, false), done: false })}\n`);
          } else {
            metrics.observe(event.stats);
            await out.write(`${JSON.stringify({ ...base(), ...shape("", true), done: true, ...final(event.stats), ...closing(generated) })}\n`);
          }
        }
      } finally {
        pool.release(served);
      }
    });
  };

  const requestOf = (options: z.infer<typeof OPTIONS>, prompt: number[], format: unknown, signal: AbortSignal) => ({
    prompt,
    json: format === "json",
    maxTokens: options?.num_predict === undefined || options.num_predict < 0 ? Infinity : options.num_predict,
    sampling: samplingFrom({
      temperature: options?.temperature,
      topK: options?.top_k,
      topP: options?.top_p,
      minP: options?.min_p,
      seed: options?.seed,
      repeatPenalty: options?.repeat_penalty,
      repeatLastN: options?.repeat_last_n,
      presencePenalty: options?.presence_penalty,
      frequencyPenalty: options?.frequency_penalty,
    }),
    stop: options?.stop,
    signal,
  });

  const checkFormat = (format: unknown) => {
    if (format !== undefined && format !== "" && format !== "json") throw new ApiError(400, 'format: only "json" is supported (JSON schemas are not yet)', "unsupported", "format");
  };

  app.post("/api/generate", async (c) => {
    const started = performance.now();
    const body = parseBody(GENERATE, await c.req.json().catch(() => undefined));
    checkFormat(body.format);
    const served = await acquire(body.model, body.keep_alive);
    if (body.prompt === undefined || body.prompt === "") {
      // Ollama loads (or, with keep_alive 0, unloads) the model for an empty prompt
      pool.release(served);
      return c.json({ model: served.name, created_at: new Date().toISOString(), response: "", done: true, done_reason: body.keep_alive === 0 ? "unload" : "load" });
    }
    const raw = body.raw ?? false;
    const tokens = withContext(served.loaded.model.tokenizer, body.context ?? [], promptTokens(served.loaded.model, body.prompt, raw, body.system));
    const abort = abortWithClient(c);
    const events = submit(served.loaded.scheduler, requestOf(body.options, tokens, body.format, abort.signal));
    // as Ollama, the last line carries the conversation so far as `context`, except for raw prompts
    const closing = (generated: number[]) => (raw ? {} : { context: [...tokens, ...generated] });
    return respond(c, served, events, abort, body.stream ?? true, started, (text) => ({ response: text }), closing);
  });

  app.post("/api/chat", async (c) => {
    const started = performance.now();
    const body = parseBody(CHAT, await c.req.json().catch(() => undefined));
    checkFormat(body.format);
    const served = await acquire(body.model, body.keep_alive);
    if (body.messages.length === 0) {
      pool.release(served);
      return c.json({ model: served.name, created_at: new Date().toISOString(), message: { role: "assistant", content: "" }, done: true, done_reason: "load" });
    }
    const abort = abortWithClient(c);
    const messages: ChatMessage[] = body.messages.map((m) => ({
      role: m.role,
      content: m.content,
      ...(m.tool_calls ? { tool_calls: m.tool_calls.map((call) => ({ type: "function" as const, function: call.function })) } : {}),
      ...(m.tool_name ? { name: m.tool_name } : {}),
    }));
    const tools = body.tools && body.tools.length > 0 ? body.tools : undefined;
    const tokens = conversationTokens(served.loaded.model, messages, false, { tools });
    const parser = new OutputParser({ tools: tools?.map((t) => t.function.name), startsInReasoning: opensReasoning(served.loaded.model.tokenizer, tokens) });
    const events = submit(served.loaded.scheduler, requestOf(body.options, tokens, body.format, abort.signal));
    // reasoning goes to message.thinking and calls to message.tool_calls, as Ollama reports them
    return respond(c, served, events, abort, body.stream ?? true, started, (text, done) => {
      const { content, reasoning, toolCalls } = parser.feed(text, done);
      return {
        message: {
          role: "assistant",
          content,
          ...(reasoning ? { thinking: reasoning } : {}),
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls.map((call) => ({ function: { name: call.name, arguments: JSON.parse(call.arguments) as unknown } })) } : {}),
        },
      };
    });
  });

  return app;
}

/** A model name or hub reference from a request: one that cannot be read is the request's fault (400). */
function referenceIn(name: string): ModelReference {
  try {
    return parseReference(name);
  } catch (error) {
    if (error instanceof StoreError) throw new ApiError(400, error.message, "invalid_request", "model");
    throw error;
  }
}

/**
 * A prompt after the `context` of an earlier answer: its tokens, then the prompt's own without a second
 * BOS. Ollama turns the context back into text and tokenizes it again with the prompt; continuing from
 * the tokens themselves gives the same conversation and lets the prefix cache find it. (The scheduler
 * refuses ids past the vocabulary.)
 */
function withContext(tokenizer: Tokenizer, context: readonly number[], prompt: number[]): number[] {
  if (context.length === 0) return prompt;
  const bos = tokenizer.vocab.specials.bos;
  return [...context, ...(bos !== undefined && prompt[0] === bos ? prompt.slice(1) : prompt)];
}
