import { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { OutputParser, ParsedDelta, ParsedToolCall } from "../../chat/output-parser.js";
import { ChatMessage } from "../../chat/template.js";
import { conversationTokens, opensReasoning } from "../../engine/prompt.js";
import { GenerationEvent, GenerationSummary } from "../../engine/scheduler.js";
import { Tokenizer } from "../../tokenizer/tokenizer.js";
import { ApiError } from "../errors.js";
import { abortWithClient, collect, Collected, samplingFrom, submit, TokenOut } from "../generation.js";
import { Metrics } from "../metrics.js";
import { ModelPool, ServedModel, UnknownModelError } from "../model-pool.js";
import { NO_SUFFIX, parseBody } from "../validate.js";

const SAMPLING = {
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  // 0 or less: every token, as llama.cpp's top-k takes it (Ollama clients send -1)
  top_k: z.number().int().optional(),
  min_p: z.number().min(0).max(1).optional(),
  max_tokens: z.number().int().min(1).optional().nullable(),
  max_completion_tokens: z.number().int().min(1).optional().nullable(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).optional().nullable(),
  seed: z.number().int().optional().nullable(),
  presence_penalty: z.number().min(-2).max(2).optional().nullable(),
  frequency_penalty: z.number().min(-2).max(2).optional().nullable(),
  repetition_penalty: z.number().gt(0).optional(),
  logit_bias: z.record(z.string().regex(/^\d+$/), z.number().min(-100).max(100)).optional().nullable(),
  n: z.number().int().min(1).max(16).optional().nullable(),
  stream: z.boolean().optional().nullable(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).optional().nullable(),
  response_format: z.object({ type: z.enum(["text", "json_object"]) }).optional().nullable(),
};

const CONTENT = z.union([z.string(), z.array(z.object({ type: z.literal("text"), text: z.string() })), z.null()]);

const TOOL_CALL = z.looseObject({ id: z.string().optional(), type: z.literal("function").optional(), function: z.object({ name: z.string(), arguments: z.string() }) });

const TOOL = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({ name: z.string().min(1).max(256), description: z.string().optional(), parameters: z.record(z.string(), z.unknown()).optional() }),
});

const CHAT_REQUEST = z.looseObject({
  model: z.string().min(1),
  messages: z
    .array(
      z.looseObject({
        role: z.enum(["system", "developer", "user", "assistant", "tool"]),
        content: CONTENT.optional(),
        tool_calls: z.array(TOOL_CALL).optional().nullable(),
        tool_call_id: z.string().optional(),
        name: z.string().optional(),
      }),
    )
    .min(1),
  tools: z.array(TOOL).max(128).optional().nullable(),
  tool_choice: z.union([z.enum(["none", "auto", "required"]), z.looseObject({ type: z.literal("function") })]).optional().nullable(),
  logprobs: z.boolean().optional().nullable(),
  top_logprobs: z.number().int().min(0).max(20).optional().nullable(),
  ...SAMPLING,
});

const COMPLETION_REQUEST = z.looseObject({
  model: z.string().min(1),
  prompt: z.union([z.string(), z.array(z.number().int().min(0))]),
  logprobs: z.number().int().min(0).max(5).optional().nullable(),
  echo: z.boolean().optional(),
  suffix: NO_SUFFIX,
  ...SAMPLING,
});

type SamplingRequest = z.infer<z.ZodObject<typeof SAMPLING>>;

function tokenText(tokenizer: Tokenizer, id: number): string {
  return tokenizer.piece(id);
}

const bytesOf = (text: string): number[] => Array.from(new TextEncoder().encode(text));

function chatLogprobs(tokenizer: Tokenizer, tokens: TokenOut[]): { content: unknown[] } {
  return {
    content: tokens
      .filter((t) => t.id >= 0)
      .map((t) => ({
        token: tokenText(tokenizer, t.id),
        logprob: t.logprob ?? 0,
        bytes: bytesOf(tokenText(tokenizer, t.id)),
        top_logprobs: (t.top ?? []).map((alt) => ({ token: tokenText(tokenizer, alt.id), logprob: alt.logprob, bytes: bytesOf(tokenText(tokenizer, alt.id)) })),
      })),
  };
}

function usage(summaries: GenerationSummary[]): Record<string, unknown> {
  const prompt = summaries[0]?.promptTokens ?? 0;
  const completion = summaries.reduce((s, x) => s + x.generatedTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: summaries[0]?.cachedTokens ?? 0 } };
}

/** llama-server's `timings`, from the first choice. */
function timings(summary: GenerationSummary): Record<string, number> {
  const promptN = summary.promptTokens - summary.cachedTokens;
  const per = (n: number, ms: number): number => (n > 0 ? ms / n : 0);
  const rate = (n: number, ms: number): number => (ms > 0 ? (n * 1000) / ms : 0);
  return {
    cache_n: summary.cachedTokens,
    prompt_n: promptN,
    prompt_ms: summary.promptMs,
    prompt_per_token_ms: per(promptN, summary.promptMs),
    prompt_per_second: rate(promptN, summary.promptMs),
    predicted_n: summary.generatedTokens,
    predicted_ms: summary.generationMs,
    predicted_per_token_ms: per(summary.generatedTokens, summary.generationMs),
    predicted_per_second: rate(summary.generatedTokens, summary.generationMs),
  };
}

const finishReason = (summary: GenerationSummary): string => (summary.finishReason === "length" ? "length" : "stop");

/** A call's arguments as the templates want them: an object where the JSON text parses to one. */
function argumentsObject(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function openAiToolCall(call: ParsedToolCall): { id: string; type: "function"; function: { name: string; arguments: string } } {
  return { id: `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`, type: "function", function: { name: call.name, arguments: call.arguments } };
}

function messageText(content: z.infer<typeof CONTENT> | undefined): string {
  if (content === undefined || content === null) return "";
  return typeof content === "string" ? content : content.map((part) => part.text).join("");
}

interface ReplySpec {
  object: string;
  chunkObject: string;
  idPrefix: string;
  served: ServedModel;
  streams: AsyncIterable<GenerationEvent>[];
  abort: AbortController;
  stream: boolean;
  includeUsage: boolean;
  /** A whole choice's fields (finish_reason included where it is not the summary's), for an answer in one piece. */
  choice: (result: Collected, index: number) => Record<string, unknown>;
  /** The first chunk of each streamed choice, where the API has one. */
  opening?: () => Record<string, unknown>;
  /** A streamed token's chunk; none while its text is held back (a marker that may be starting). */
  tokenChoice: (event: Extract<GenerationEvent, { type: "token" }>, index: number) => Record<string, unknown> | undefined;
  /** The chunks that close a streamed choice; the last carries finish_reason, the summary's unless given. */
  doneChoices: (index: number) => { chunks: Record<string, unknown>[]; finishReason?: string };
}

/** Streams several choices' events as they come, tagged with their index. */
async function* merged(streams: AsyncIterable<GenerationEvent>[]): AsyncGenerator<{ index: number; event: GenerationEvent }> {
  const iterators = streams.map((s) => s[Symbol.asyncIterator]());
  const next = (index: number) => iterators[index].next().then((result) => ({ index, result }));
  const pending = new Map(iterators.map((_, i) => [i, next(i)]));
  while (pending.size > 0) {
    const { index, result } = await Promise.race(pending.values());
    if (result.done) {
      pending.delete(index);
      continue;
    }
    pending.set(index, next(index));
    yield { index, event: result.value };
  }
}

/** One answer in OpenAI's shape, whole or as server-sent events ending in [DONE]. */
function reply(c: Context, spec: ReplySpec, pool: ModelPool, metrics: Metrics): Response | Promise<Response> {
  const id = `${spec.idPrefix}-${crypto.randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = spec.served.name;
  const finished = () => pool.release(spec.served);
  if (!spec.stream) {
    return Promise.all(spec.streams.map(collect))
      .finally(finished)
      .then((results) => {
        for (const r of results) metrics.observe(r.summary);
        const choices = results.map((r, index) => ({ index, finish_reason: finishReason(r.summary), ...spec.choice(r, index) }));
        return c.json({ id, object: spec.object, created, model, choices, usage: usage(results.map((r) => r.summary)), timings: timings(results[0].summary) });
      });
  }
  return streamSSE(c, async (sse) => {
    sse.onAbort(() => spec.abort.abort());
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => sse.writeSSE({ data: JSON.stringify({ id, object: spec.chunkObject, created, model, choices, ...extra }) });
    const summaries: GenerationSummary[] = [];
    try {
      if (spec.opening) for (let index = 0; index < spec.streams.length; index++) await chunk([{ index, ...spec.opening(), finish_reason: null }]);
      for await (const { index, event } of merged(spec.streams)) {
        if (event.type === "done") {
          summaries[index] = event.stats;
          metrics.observe(event.stats);
          const done = spec.doneChoices(index);
          const last = done.chunks.length - 1;
          for (const [i, fields] of done.chunks.entries()) {
            await chunk([{ index, ...fields, finish_reason: i === last ? (done.finishReason ?? finishReason(event.stats)) : null }]);
          }
        } else {
          const fields = spec.tokenChoice(event, index);
          if (fields) await chunk([{ index, ...fields, finish_reason: null }]);
        }
      }
      if (spec.includeUsage) await chunk([], { usage: usage(summaries), timings: timings(summaries[0]) });
      await sse.writeSSE({ data: "[DONE]" });
    } finally {
      finished();
    }
  });
}

/** The OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/models. */
export function openAiRoutes(pool: ModelPool, metrics: Metrics): Hono {
  const app = new Hono();

  app.get("/v1/models", (c) =>
    c.json({ object: "list", data: pool.list().map((m) => ({ id: m.name, object: "model", created: 0, owned_by: "tsllm" })) }),
  );

  const start = async (body: SamplingRequest & { model: string }, prompt: (served: Awaited<ReturnType<ModelPool["acquire"]>>) => number[], logprobs: number | undefined, signal: AbortSignal) => {
    const served = await pool.acquire(body.model).catch((error: unknown) => {
      if (error instanceof UnknownModelError) throw new ApiError(404, `The model '${body.model}' does not exist`, "model_not_found", "model");
      throw error;
    });
    const tokens = prompt(served);
    const { tokenizer } = served.loaded.model;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? Infinity;
    const n = body.n ?? 1;
    const logitBias = body.logit_bias ? new Map(Object.entries(body.logit_bias).map(([id, bias]) => [Number(id), bias])) : undefined;
    for (const id of logitBias?.keys() ?? []) {
      if (id >= tokenizer.vocab.size) throw new ApiError(400, `logit_bias: token ${id} is outside the vocabulary (${tokenizer.vocab.size} tokens)`, "invalid_request", "logit_bias");
    }
    const stop = body.stop === undefined || body.stop === null ? undefined : typeof body.stop === "string" ? [body.stop] : body.stop;
    const streams = Array.from({ length: n }, (_, i) =>
      submit(served.loaded.scheduler, {
        prompt: tokens,
        maxTokens,
        sampling: samplingFrom(
          {
            temperature: body.temperature,
            topP: body.top_p,
            topK: body.top_k,
            minP: body.min_p,
            seed: body.seed ?? undefined,
            repeatPenalty: body.repetition_penalty,
            presencePenalty: body.presence_penalty ?? undefined,
            frequencyPenalty: body.frequency_penalty ?? undefined,
          },
          i,
        ),
        stop,
        logprobs,
        logitBias,
        json: body.response_format?.type === "json_object",
        signal,
      }),
    );
    return { served, tokenizer, streams, tokens };
  };

  app.post("/v1/chat/completions", async (c) => {
    const body = parseBody(CHAT_REQUEST, await c.req.json().catch(() => undefined));
    const abort = abortWithClient(c);
    const messages: ChatMessage[] = body.messages.map((m) => ({
      role: m.role === "developer" ? "system" : m.role,
      content: messageText(m.content),
      ...(m.tool_calls ? { tool_calls: m.tool_calls.map((call) => ({ id: call.id, type: "function" as const, function: { name: call.function.name, arguments: argumentsObject(call.function.arguments) } })) } : {}),
      ...(m.tool_call_id ? { tool_call_id: m.tool_call_id } : {}),
      ...(m.name ? { name: m.name } : {}),
    }));
    const tools = body.tools && body.tools.length > 0 ? body.tools : undefined;
    const toolNames = tools && body.tool_choice !== "none" ? tools.map((t) => t.function.name) : undefined;
    const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : undefined;
    const { served, tokenizer, streams, tokens } = await start(body, (s) => conversationTokens(s.loaded.model, messages, false, { tools }), logprobs, abort.signal);
    const startsInReasoning = opensReasoning(tokenizer, tokens);
    const parsers = streams.map(() => new OutputParser({ tools: toolNames, startsInReasoning }));
    const delta = (parsed: ParsedDelta): Record<string, string> => ({
      ...(parsed.reasoning ? { reasoning_content: parsed.reasoning } : {}),
      ...(parsed.content ? { content: parsed.content } : {}),
    });
    return reply(
      c,
      {
        object: "chat.completion",
        chunkObject: "chat.completion.chunk",
        idPrefix: "chatcmpl",
        served,
        streams,
        abort,
        stream: body.stream ?? false,
        includeUsage: body.stream_options?.include_usage ?? false,
        choice: (r, index) => {
          const parsed = parsers[index].feed(r.text, true);
          const content = parsed.content;
          const reasoning = parsed.reasoning.trim();
          const toolCalls = parsed.toolCalls.map(openAiToolCall);
          return {
            message: {
              role: "assistant",
              content: toolCalls.length > 0 && content === "" ? null : content,
              ...(reasoning ? { reasoning_content: reasoning } : {}),
              ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            },
            logprobs: logprobs === undefined ? null : chatLogprobs(tokenizer, r.tokens),
            ...(toolCalls.length > 0 ? { finish_reason: "tool_calls" } : {}),
          };
        },
        opening: () => ({ delta: { role: "assistant", content: "" }, logprobs: null }),
        tokenChoice: (event, index) => {
          const fields = delta(parsers[index].push(event.text));
          const tokenLogprobs = logprobs === undefined || event.id < 0 ? null : chatLogprobs(tokenizer, [event]);
          return Object.keys(fields).length > 0 || tokenLogprobs ? { delta: fields, logprobs: tokenLogprobs } : undefined;
        },
        doneChoices: (index) => {
          const last = parsers[index].finish();
          const chunks: Record<string, unknown>[] = [];
          const rest = delta(last);
          if (Object.keys(rest).length > 0) chunks.push({ delta: rest, logprobs: null });
          last.toolCalls.forEach((call, i) => chunks.push({ delta: { tool_calls: [{ index: i, ...openAiToolCall(call) }] }, logprobs: null }));
          chunks.push({ delta: {}, logprobs: null });
          return { chunks, finishReason: last.toolCalls.length > 0 ? "tool_calls" : undefined };
        },
      },
      pool,
      metrics,
    );
  });

  app.post("/v1/completions", async (c) => {
    const body = parseBody(COMPLETION_REQUEST, await c.req.json().catch(() => undefined));
    const abort = abortWithClient(c);
    const logprobs = body.logprobs ?? undefined;
    const { served, tokenizer, streams } = await start(
      body,
      (s) => (typeof body.prompt === "string" ? s.loaded.model.tokenizer.encode(body.prompt, { addSpecial: true, parseSpecial: false }) : body.prompt),
      logprobs,
      abort.signal,
    );
    const legacyLogprobs = (tokens: TokenOut[]) => {
      const real = tokens.filter((t) => t.id >= 0);
      let offset = 0;
      return {
        tokens: real.map((t) => tokenText(tokenizer, t.id)),
        token_logprobs: real.map((t) => t.logprob ?? 0),
        top_logprobs: real.map((t) => Object.fromEntries((t.top ?? []).map((alt) => [tokenText(tokenizer, alt.id), alt.logprob]))),
        text_offset: real.map((t) => {
          const at = offset;
          offset += t.text.length;
          return at;
        }),
      };
    };
    const echoed = body.echo && typeof body.prompt === "string" ? body.prompt : "";
    return reply(
      c,
      {
        object: "text_completion",
        chunkObject: "text_completion",
        idPrefix: "cmpl",
        served,
        streams,
        abort,
        stream: body.stream ?? false,
        includeUsage: body.stream_options?.include_usage ?? false,
        choice: (r) => ({ text: echoed + r.text, logprobs: logprobs === undefined ? null : legacyLogprobs(r.tokens) }),
        tokenChoice: (event) => ({ text: event.text, logprobs: logprobs === undefined || event.id < 0 ? null : legacyLogprobs([event]) }),
        doneChoices: () => ({ chunks: [{ text: "", logprobs: null }] }),
      },
      pool,
      metrics,
    );
  });

  return app;
}
