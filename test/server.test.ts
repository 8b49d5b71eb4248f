import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { REPO_ROOT, STORIES, ZOO } from "./helpers/paths.js";
import { RunningServer, startServer } from "./helpers/server.js";
import { TestHub } from "./helpers/test-hub.js";
import { JsonPrefix } from "../src/sampling/json-prefix.js";
import { GgufFile, GgufValueType, Metadata } from "../src/gguf/index.js";
import { writeGguf } from "../src/gguf/writer.js";
import { loadTokenizer } from "../src/engine/load.js";

const expected = JSON.parse(readFileSync(join(ZOO, "expected", "stories260K.json"), "utf8")) as {
  cases: { prompt: string; content: string; top_probs: { top: { id: number; token: string; logprob: number }[] }[] }[];
};
const story = expected.cases[0];

describe("tsllm serve with the official openai and ollama clients", () => {
  let server: RunningServer;
  let openai: OpenAI;
  let ollama: Ollama;
  before(async () => {
    server = await startServer([STORIES, "--parallel", "8"]);
    openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
    ollama = new Ollama({ host: server.url });
  });
  after(() => server.stop());

  it("lists the model under its file name", async () => {
    const models = await openai.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ["stories260K"]);
  });

  it("chat completion, plain and streamed, gives llama.cpp's greedy story with usage and timings", async () => {
    const messages = [{ role: "user" as const, content: story.prompt }];
    const plain = await openai.chat.completions.create({ model: "stories260K", messages, max_tokens: 64, temperature: 0 });
    assert.equal(plain.choices[0].message.content, story.content);
    assert.equal(plain.choices[0].finish_reason, "length");
    assert.deepEqual([plain.usage?.prompt_tokens, plain.usage?.completion_tokens, plain.usage?.total_tokens], [5, 64, 69]);
    assert.ok((plain as unknown as { timings: { predicted_n: number } }).timings.predicted_n === 64);
    const stream = await openai.chat.completions.create({ model: "stories260K", messages, max_tokens: 64, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, story.content);
    assert.equal(usage?.completion_tokens, 64);
  });

  it("text completion, n = 2, logprobs as llama.cpp computes them", async () => {
    const completion = await openai.completions.create({ model: "stories260K", prompt: story.prompt, max_tokens: 64, temperature: 0, n: 2 });
    assert.deepEqual(completion.choices.map((c) => c.text), [story.content, story.content]);
    const sampled = await openai.completions.create({ model: "stories260K", prompt: story.prompt, max_tokens: 32, temperature: 1, seed: 7, n: 2 });
    assert.equal(sampled.choices.length, 2);
    assert.notEqual(sampled.choices[0].text, sampled.choices[1].text, "two samples differ");
    const withLogprobs = await openai.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: story.prompt }], max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 5 });
    const first = withLogprobs.choices[0].logprobs?.content?.[0];
    assert.equal(first?.token, ",");
    assert.ok(Math.abs((first?.logprob ?? 0) - story.top_probs[0].top[0].logprob) < 1e-4);
    assert.deepEqual(first?.top_logprobs.map((t) => t.token), story.top_probs[0].top.map((t) => t.token));
    for (const [i, alt] of (first?.top_logprobs ?? []).entries()) assert.ok(Math.abs(alt.logprob - story.top_probs[0].top[i].logprob) < 1e-3);
  });

  it("ollama: generate and chat, streamed and not, with Ollama's final counts; tags, ps, show, version", async () => {
    const options = { temperature: 0, num_predict: 64 };
    const plain = await ollama.generate({ model: "stories260K", prompt: story.prompt, options, stream: false });
    assert.equal(plain.response, story.content);
    assert.equal(plain.eval_count, 64);
    assert.equal(plain.prompt_eval_count, 5);
    assert.ok(plain.total_duration > 0 && plain.eval_duration > 0);
    let streamed = "";
    for await (const part of await ollama.generate({ model: "stories260K", prompt: story.prompt, options, stream: true })) streamed += part.response;
    assert.equal(streamed, story.content);
    const chat = await ollama.chat({ model: "stories260K", messages: [{ role: "user", content: story.prompt }], options });
    assert.equal(chat.message.content, story.content);
    let chatted = "";
    for await (const part of await ollama.chat({ model: "stories260K", messages: [{ role: "user", content: story.prompt }], options, stream: true })) chatted += part.message.content;
    assert.equal(chatted, story.content);
    // a model served by path reports its file's bytes, as Ollama does
    const bytes = statSync(STORIES).size;
    assert.deepEqual((await ollama.list()).models.map((m) => [m.name, m.size]), [["stories260K", bytes]]);
    assert.deepEqual((await ollama.ps()).models.map((m) => [m.name, m.size]), [["stories260K", bytes]]);
    const shown = await ollama.show({ model: "stories260K" });
    assert.equal((shown.model_info as unknown as Record<string, unknown>)["general.architecture"], "llama");
    assert.match((await ollama.version()).version, /^\d+\.\d+\.\d+$/);
  });

  it("ollama generate: the last line's context (prompt and answer tokens) carries the conversation into the next prompt, as Ollama's does", async () => {
    const options = { temperature: 0, num_predict: 16 };
    const { file, tokenizer } = loadTokenizer(STORIES);
    file.close();
    const first = await ollama.generate({ model: "stories260K", prompt: story.prompt, options, stream: false });
    assert.equal(first.context.length, first.prompt_eval_count + first.eval_count);
    assert.deepEqual(first.context.slice(0, first.prompt_eval_count), tokenizer.encode(story.prompt, { addSpecial: true, parseSpecial: false }));
    const more = tokenizer.encode(" Then", { addSpecial: false, parseSpecial: false });
    const next = await ollama.generate({ model: "stories260K", prompt: " Then", context: first.context, options: { ...options, num_predict: 12 }, stream: false });
    assert.equal(next.prompt_eval_count, first.context.length + more.length, "the context, then the prompt without a second BOS");
    // the same as continuing from those tokens through the OpenAI API
    const same = await openai.completions.create({ model: "stories260K", prompt: [...first.context, ...more], max_tokens: 12, temperature: 0 });
    assert.equal(next.response, same.choices[0].text);
    let streamedContext: number[] = [];
    for await (const part of await ollama.generate({ model: "stories260K", prompt: story.prompt, options, stream: true })) if (part.done) streamedContext = part.context;
    assert.deepEqual(streamedContext, first.context);
    const raw = await ollama.generate({ model: "stories260K", prompt: story.prompt, raw: true, options, stream: false });
    assert.equal(raw.context, undefined, "no context for raw prompts");
    await assert.rejects(ollama.generate({ model: "stories260K", prompt: "hi", context: [1, 512], stream: false }), (e: Error & { status_code?: number }) => e.status_code === 400 && /prompt token 512 is outside the vocabulary \(512 tokens\)/.test(e.message));
  });

  it("top_k of 0 or less keeps every token, as llama.cpp's sampler takes it: -1 (which Ollama clients send) samples as 0", async () => {
    const sampled = async (top_k: number) =>
      (await ollama.generate({ model: "stories260K", prompt: story.prompt, options: { temperature: 1.5, seed: 11, num_predict: 24, top_k }, stream: false })).response;
    const every = await sampled(0);
    assert.equal(await sampled(-1), every);
    assert.notEqual(await sampled(1), every, "top_k 1 would be greedy");
  });

  it("format json (Ollama) and response_format json_object (OpenAI) keep the answer a JSON object", async () => {
    for (const seed of [1, 2]) {
      const answer = await ollama.generate({ model: "stories260K", prompt: story.prompt, format: "json", stream: false, options: { seed, num_predict: 160 } });
      const state = new JsonPrefix();
      assert.ok(state.pushBytes(new TextEncoder().encode(answer.response)), answer.response);
      if ((answer.done_reason as string | undefined) === "stop") assert.equal(typeof JSON.parse(answer.response ?? ""), "object");
    }
    const chat = await openai.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "Once" }], response_format: { type: "json_object" }, max_tokens: 40, temperature: 0 });
    assert.match(chat.choices[0].message.content ?? "", /^\{/);
  });

  it("batching changes nothing: eight concurrent greedy requests give what each gives alone", async () => {
    const prompts = ["Once upon a time", "Lily and Ben", "The cat sat on", "Mom said", "One day, a big", "Tom had a red", "The sun was", "In the park"];
    const ask = (prompt: string) => openai.completions.create({ model: "stories260K", prompt, max_tokens: 48, temperature: 0 }).then((r) => r.choices[0].text);
    const alone: string[] = [];
    for (const prompt of prompts) alone.push(await ask(prompt));
    const together = await Promise.all(prompts.map(ask));
    assert.deepEqual(together, alone);
  });

  it("prefix caching: the same 200-token prefix is read from the cache the second time", async () => {
    const prefix = `${expected.cases.map((c) => c.content).join(" ")}`;
    const first = await openai.completions.create({ model: "stories260K", prompt: `${prefix} And then`, max_tokens: 4, temperature: 0 });
    assert.ok((first.usage?.prompt_tokens ?? 0) >= 200, `${first.usage?.prompt_tokens} tokens`);
    const second = await openai.completions.create({ model: "stories260K", prompt: `${prefix} At last`, max_tokens: 4, temperature: 0 });
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    assert.ok(cached >= 192, `${cached} cached tokens`);
    const timing = (r: unknown) => (r as { timings: { prompt_ms: number } }).timings.prompt_ms;
    assert.ok(timing(second) < timing(first), `prompt ${timing(second)} ms vs ${timing(first)} ms`);
  });

  it("errors in OpenAI's shape: unknown model 404, bad field 400, malformed JSON 400, context overflow 400", async () => {
    await assert.rejects(openai.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "hi" }] }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 404 && e.code === "model_not_found");
    // a request names models, never files on the server's disk
    for (const model of [STORIES, "README.md", "../shared/models/stories260K.gguf"]) {
      await assert.rejects(openai.completions.create({ model, prompt: "hi", max_tokens: 1 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 404, model);
    }
    await assert.rejects(openai.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "hi" }], temperature: 9 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /temperature/.test(e.message));
    const malformed = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
    assert.equal(malformed.status, 400);
    assert.equal(((await malformed.json()) as { error: { code: string } }).error.code, "invalid_json");
    const long = "Once upon a time ".repeat(700);
    await assert.rejects(openai.completions.create({ model: "stories260K", prompt: long, max_tokens: 4 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /context of 2048 tokens/.test(e.message));
    // a prompt of token ids past the vocabulary is refused before it reaches the forward pass, and the
    // server goes on serving
    await assert.rejects(openai.completions.create({ model: "stories260K", prompt: [1, 99999], max_tokens: 2 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /prompt token 99999 is outside the vocabulary \(512 tokens\)/.test(e.message));
    assert.equal((await openai.completions.create({ model: "stories260K", prompt: [1, 2], max_tokens: 2 })).choices.length, 1);
    // a field of several shapes is told by the shape it came nearest to
    for (const [body, said] of [[{ stop: ["a", "b", "c", "d", "e"] }, /^stop: Too big: expected array to have <=4 items$/], [{ stop: 5 }, /^stop: Invalid input: expected string or array$/]] as const) {
      await assert.rejects(openai.completions.create({ model: "stories260K", prompt: "hi", max_tokens: 1, ...(body as object) }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.param === "stop" && said.test(e.error ? (e.error as { message: string }).message : ""), JSON.stringify(body));
    }
    // logit_bias keys are token ids of the model's vocabulary (stories260K has 512)
    for (const [bias, said] of [[{ abc: 5 }, /logit_bias.abc: Invalid key/], [{ 512: 5 }, /token 512 is outside the vocabulary \(512 tokens\)/]] as const) {
      await assert.rejects(openai.completions.create({ model: "stories260K", prompt: "hi", max_tokens: 1, logit_bias: bias }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.param?.startsWith("logit_bias") === true && said.test(e.message), JSON.stringify(bias));
    }
  });

  it("what tsllm does not implement (images, a suffix to fill in) gets 400 saying so, not an answer that leaves it out", async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["/api/generate", { model: "stories260K", prompt: "hi", images: ["aGk="], stream: false }, /images: the models served here read text only/],
      ["/api/chat", { model: "stories260K", messages: [{ role: "user", content: "hi", images: ["aGk="] }], stream: false }, /messages.0.images: the models served here read text only/],
      ["/api/generate", { model: "stories260K", prompt: "def f(", suffix: "return x", stream: false }, /suffix: fill-in-the-middle is not supported/],
      ["/v1/completions", { model: "stories260K", prompt: "def f(", suffix: "return x" }, /suffix: fill-in-the-middle is not supported/],
    ];
    for (const [path, body, said] of cases) {
      const response = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      assert.equal(response.status, 400, path);
      const error = ((await response.json()) as { error: string | { message: string } }).error;
      assert.match(typeof error === "string" ? error : error.message, said, path);
    }
    // empty ones ask for nothing
    const plain = await ollama.generate({ model: "stories260K", prompt: story.prompt, images: [], options: { temperature: 0, num_predict: 4 }, stream: false });
    assert.equal(plain.eval_count, 4);
    assert.ok(story.content.startsWith(plain.response ?? "missing"), plain.response);
  });

  it("Ollama's pull and delete refuse a name that is no model reference with 400 and say why", async () => {
    for (const [path, method] of [["/api/pull", "POST"], ["/api/delete", "DELETE"]]) {
      const response = await fetch(`${server.url}${path}`, { method, headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "../../x" }) });
      assert.equal(response.status, 400, path);
      assert.match(((await response.json()) as { error: string }).error, /expected OWNER\/REPO/, path);
    }
  });
});

describe("tsllm serve under pressure", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([STORIES, "--parallel", "1", "--queue", "2", "--max-body", "2048", "--api-key", "sekrit"]);
  });
  after(() => server.stop());
  const post = (path: string, body: unknown, key = "sekrit", signal?: AbortSignal) =>
    fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: typeof body === "string" ? body : JSON.stringify(body), signal });
  const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(await (await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer sekrit" } })).text())?.[1]);

  it("asks for the API key everywhere but /health", async () => {
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    const refused = await post("/v1/completions", { model: "stories260K", prompt: "hi", max_tokens: 1 }, "wrong");
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: { type: string } }).error.type, "authentication_error");
  });

  it("refuses an oversized body with 413", async () => {
    const big = await post("/v1/completions", { model: "stories260K", prompt: "x".repeat(4096) });
    assert.equal(big.status, 413);
  });

  it("answers 503 with Retry-After past the queue, serves the rest, and frees everything after a client leaves mid-stream", async () => {
    // long enough (no end of generation, 1000 tokens) that all 100 arrive while the first still runs
    const long = { model: "stories260K", prompt: "Once upon a time", max_tokens: 1000, temperature: 0, logit_bias: { 2: -100 } };
    // one running, two waiting: of 100 requests at once, the others are turned away at once
    const results = await Promise.all(Array.from({ length: 100 }, () => post("/v1/completions", long)));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 3, statuses.join(","));
    const busy = results.filter((r) => r.status === 503);
    assert.equal(busy.length, 97);
    assert.equal(((await busy[0].clone().json()) as { error: { code: string } }).error.code, "server_overloaded");
    assert.equal(busy[0].headers.get("retry-after"), "1");
    await Promise.all(results.map((r) => r.text()));

    const abort = new AbortController();
    const streaming = await post("/v1/completions", { ...long, stream: true, max_tokens: 2000 }, "sekrit", abort.signal);
    const reader = (streaming.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    abort.abort();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await metric("tsllm_requests_running"), 0, "the cancelled request left the batch");
    const after = await post("/v1/completions", { model: "stories260K", prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
    assert.equal(after.status, 200);
    assert.equal(((await after.json()) as { choices: { text: string }[] }).choices[0].text, ", there was a little girl");
    assert.equal(await metric("tsllm_requests_waiting"), 0);
    assert.equal(await metric("tsllm_kv_blocks_used"), 0, "every block is back in the pool");
  });
});

describe("the README's curl examples", () => {
  it("each answers against a running server", async () => {
    const server = await startServer([STORIES]);
    try {
      const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
      const commands = readme.split("\n").filter((line) => line.startsWith("curl "));
      assert.ok(commands.length >= 5);
      for (const command of commands) {
        const { status, stdout, stderr } = spawnSync("sh", ["-c", command.replaceAll("http://127.0.0.1:8080", server.url)], { encoding: "utf8" });
        assert.equal(status, 0, `${command}\n${stderr}`);
        assert.ok(/"choices"|"response"|"message"|tsllm_requests_total/.test(stdout), `${command}\n${stdout}`);
      }
    } finally {
      await server.stop();
    }
  });
});

describe("keep-alive", () => {
  it("unloads an idle model after --keep-alive, and at once for keep_alive 0", async () => {
    const server = await startServer([STORIES, "--keep-alive", "1s"]);
    try {
      const ollama = new Ollama({ host: server.url });
      await ollama.generate({ model: "stories260K", prompt: "Once", options: { num_predict: 2 }, stream: false });
      assert.deepEqual((await ollama.ps()).models.map((m) => m.name), ["stories260K"]);
      await new Promise((r) => setTimeout(r, 1600));
      assert.deepEqual((await ollama.ps()).models, []);
      await ollama.generate({ model: "stories260K", prompt: "Once", options: { num_predict: 2 }, stream: false, keep_alive: 0 });
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual((await ollama.ps()).models, []);
    } finally {
      await server.stop();
    }
  });
});

describe("a KV pool too small for every sequence at once", () => {
  it("preempts the newest sequence and recomputes it later: every answer is the one it gives alone, and the pool ends empty", async () => {
    // 8 blocks of 16 tokens; four sequences of 5 + 48 tokens need 16
    const server = await startServer([STORIES, "-c", "128", "--parallel", "4"]);
    try {
      const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
      const prompts = ["Once upon a time", "Lily and Ben", "The cat sat on", "Mom said"];
      const ask = (prompt: string) => openai.completions.create({ model: "stories260K", prompt, max_tokens: 48, temperature: 0, logit_bias: { 2: -100 } }).then((r) => r.choices[0].text);
      const alone: string[] = [];
      for (const prompt of prompts) alone.push(await ask(prompt));
      assert.deepEqual(await Promise.all(prompts.map(ask)), alone);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.ok(Number(/^tsllm_preemptions (\d+)/m.exec(metrics)?.[1]) > 0, "some sequence was preempted");
      assert.equal(Number(/^tsllm_kv_blocks_used (\d+)/m.exec(metrics)?.[1]), 0);
    } finally {
      await server.stop();
    }
  });
});

/** A llama model's layer count and the width of its keys (and values) per token, from its header. */
function kvGeometry(path: string): { layers: number; kvWidth: number } {
  const file = GgufFile.open(path);
  const meta = new Metadata(file.metadata);
  const count = (key: string): number => meta.number(`llama.${key}`) as number;
  file.close();
  return { layers: count("block_count"), kvWidth: (count("embedding_length") / count("attention.head_count")) * count("attention.head_count_kv") };
}

describe("--kv-memory", () => {
  it("sizes the pool in bytes: F16 keys and values of every layer a token", async () => {
    const server = await startServer([STORIES, "--kv-memory", "64K"]);
    try {
      const { layers, kvWidth } = kvGeometry(STORIES);
      const tokens = Math.floor(65536 / (layers * kvWidth * 4));
      const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
      await assert.rejects(openai.completions.create({ model: "stories260K", prompt: "Once upon a time ".repeat(60), max_tokens: 4 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.message.includes(`context of ${tokens} tokens`));
    } finally {
      await server.stop();
    }
  });
});

describe("--kv-type q8_0", () => {
  it("keeps the pool in Q8_0 blocks: 34 bytes a 32 values, batching still changes nothing, heads too small are refused", async () => {
    const zoo = join(ZOO, "zoo-Q4_0-pure.gguf");
    const server = await startServer([zoo, STORIES, "--alias", "zoo", "--alias", "stories", "--kv-type", "q8_0", "--kv-memory", "64K", "--parallel", "4"]);
    try {
      const { layers, kvWidth } = kvGeometry(zoo);
      const q8Tokens = Math.floor(65536 / (layers * 2 * (kvWidth / 32) * 34));
      assert.ok(q8Tokens > 1.8 * Math.floor(65536 / (layers * 2 * kvWidth * 2)), "Q8_0 holds almost twice F16's tokens");
      const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
      await assert.rejects(openai.completions.create({ model: "zoo", prompt: "Once upon a time ".repeat(80), max_tokens: 4 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.message.includes(`context of ${q8Tokens} tokens`));
      const prompts = ["Once upon a time", "Lily and Ben", "The cat sat on", "Mom said"];
      const ask = (prompt: string) => openai.completions.create({ model: "zoo", prompt, max_tokens: 40, temperature: 0, logit_bias: { 2: -100 } }).then((r) => r.choices[0].text);
      const alone: string[] = [];
      for (const prompt of prompts) alone.push(await ask(prompt));
      assert.deepEqual(await Promise.all(prompts.map(ask)), alone);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.equal(Number(/^tsllm_kv_blocks_used (\d+)/m.exec(metrics)?.[1]), 0);
      // stories260K's heads are 8 wide: a Q8_0 block (32) would straddle them
      await assert.rejects(openai.completions.create({ model: "stories", prompt: "Hi", max_tokens: 2 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 500 && /multiple of 32.*--kv-type f16/.test(e.message));
    } finally {
      await server.stop();
    }
  });
});

describe("several models", () => {
  it("serves each under its name (file name or --alias), chosen by the request's model field", async () => {
    const server = await startServer([STORIES, join(ZOO, "zoo-Q4_0-pure.gguf"), "--alias", "stories", "--alias", "zoo"]);
    try {
      const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
      assert.deepEqual((await openai.models.list()).data.map((m) => m.id), ["stories", "zoo"]);
      const zoo = JSON.parse(readFileSync(join(ZOO, "expected", "zoo-Q4_0-pure.json"), "utf8")) as { cases: { prompt: string; content: string }[] };
      const [a, b] = await Promise.all([
        openai.completions.create({ model: "stories", prompt: story.prompt, max_tokens: 64, temperature: 0 }),
        openai.completions.create({ model: "zoo", prompt: zoo.cases[0].prompt, max_tokens: 32, temperature: 0, logit_bias: { 2: -100 } }),
      ]);
      assert.equal(a.choices[0].text, story.content);
      assert.equal(b.choices[0].text, zoo.cases[0].content);
    } finally {
      await server.stop();
    }
  });
});

/** stories260K with a chat template of our choosing: same weights and vocabulary. */
function storiesWithTemplate(template: string, path: string): string {
  const source = GgufFile.open(STORIES);
  const metadata = new Map(source.metadata);
  metadata.set("tokenizer.chat_template", { type: GgufValueType.STRING, value: template });
  writeGguf(path, {
    metadata,
    tensors: source.tensors.map((info) => ({ name: info.name, dims: [...info.dims], type: info.type, data: () => source.readTensorData(info) })),
  });
  source.close();
  return path;
}

describe("reasoning and tools through the APIs", () => {
  it("a template that opens <think> sends the answer to reasoning_content (OpenAI) and thinking (Ollama); tools reach the template", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsllm-think-"));
    // the generation prompt opens a reasoning block, as DeepSeek-R1's does; tools are listed by name
    const path = storiesWithTemplate("{% if tools %}Tools: {% for t in tools %}{{ t.function.name }} {% endfor %}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}<think>", join(dir, "thinker.gguf"));
    const server = await startServer([path]);
    try {
      const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
      const messages = [{ role: "user" as const, content: "Once upon a time" }];
      const plain = await openai.chat.completions.create({ model: "thinker", messages, max_tokens: 24, temperature: 0 });
      const message = plain.choices[0].message as typeof plain.choices[0]["message"] & { reasoning_content?: string };
      assert.equal(message.content, "");
      assert.ok((message.reasoning_content ?? "").length > 20, "the unfinished reasoning is reported as reasoning");
      const stream = await openai.chat.completions.create({ model: "thinker", messages, max_tokens: 24, temperature: 0, stream: true });
      let streamed = "";
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
        assert.ok(!delta?.content, "no answer text while reasoning");
        streamed += delta?.reasoning_content ?? "";
      }
      assert.equal(streamed.trim(), message.reasoning_content);
      const ollama = new Ollama({ host: server.url });
      const chat = await ollama.chat({ model: "thinker", messages, options: { num_predict: 24, temperature: 0 } });
      assert.equal(chat.message.content, "");
      assert.equal(chat.message.thinking?.trim(), message.reasoning_content);
      const tools = [{ type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: {} } } }];
      const withTools = await openai.chat.completions.create({ model: "thinker", messages, max_tokens: 1, temperature: 0, tools });
      const { file, tokenizer } = loadTokenizer(path);
      file.close();
      assert.equal(plain.usage?.prompt_tokens, tokenizer.encode("Once upon a time<think>").length);
      assert.equal(withTools.usage?.prompt_tokens, tokenizer.encode("Tools: get_weather Once upon a time<think>").length);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Ollama's /api/pull and /api/delete, against a local imitation of the hub", () => {
  it("pull streams progress into the store; a delete while the model answers lets the answer finish, then unloads it", async () => {
    const home = mkdtempSync(join(tmpdir(), "tsllm-serve-store-"));
    const hub = new TestHub({ repos: { "ggml-org/models": [{ path: "tinyllamas/stories260K.gguf", source: STORIES }] } });
    await hub.start();
    const server = await startServer([], { TSLLM_HOME: home, HF_ENDPOINT: hub.endpoint });
    try {
      const ollama = new Ollama({ host: server.url });
      const statuses: string[] = [];
      let completed = 0;
      for await (const part of await ollama.pull({ model: "stories260K", stream: true })) {
        statuses.push(part.status);
        completed = Math.max(completed, part.completed ?? 0);
      }
      assert.equal(statuses.at(-1), "success");
      assert.equal(completed, statSync(STORIES).size);
      const name = "ggml-org/models:stories260K";
      assert.deepEqual((await ollama.list()).models.map((m) => m.name), [name]);

      const stream = await ollama.generate({ model: name, prompt: story.prompt, stream: true, options: { num_predict: 1500, temperature: 0 } });
      const parts = stream[Symbol.asyncIterator]();
      const first = await parts.next();
      assert.equal(first.done, false);
      await ollama.delete({ model: name });
      let afterDelete = 0;
      let last = first.value;
      for (let part = await parts.next(); !part.done; part = await parts.next()) {
        afterDelete++;
        last = part.value;
      }
      assert.ok(afterDelete > 1, "the answer went on after the delete");
      assert.equal(last.done, true);
      assert.ok(last.eval_count >= afterDelete && ["stop", "length"].includes(last.done_reason), `${last.eval_count} tokens, ${last.done_reason}`);
      assert.deepEqual((await ollama.list()).models, []);
      assert.deepEqual((await ollama.ps()).models, []);
      await assert.rejects(ollama.generate({ model: name, prompt: "Hi" }), /not found/);
      // a pull that fails says what failed, as Ollama's does (500 and the reason)
      await assert.rejects(ollama.pull({ model: "ggml-org/nothing-here", stream: false }), (e: Error & { status_code?: number }) => e.status_code === 500 && /ggml-org\/nothing-here.*not found \(404\)/.test(e.message));
    } finally {
      await server.stop();
      await hub.stop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
