/**
 * `npm run bench:serve`: 1, 4, 8 and 16 concurrent streams of 128 prompt + 128 generated tokens, against
 * `tsllm serve` (continuous batching over HTTP) and against llama.cpp batching them as llama-server does
 * (node-llama-cpp's own libraries called directly, in process: one context with a sequence per stream,
 * each step one llama_decode of every generating stream's token, then prompt tokens up to the batch),
 * on the same model and threads, taking turns. Reports
 * aggregate generation tok/s, time to first token and inter-token latency (p50/p99), and the ratios; each
 * figure of several streams is set against the mean of one stream of ours measured right before it and
 * one right after.
 * BENCH_SERVE_MODEL picks another GGUF; BENCH_SERVE_QUICK=1 runs stories260K with 1 and 4 streams.
 */
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { untilOurWorkersSleep } from "../src/cli/bench-llama-cpp.js";
import { BatchEntry, openNativeLlamaCpp } from "../src/cli/llama-cpp-native.js";
import { loadTokenizer } from "../src/engine/load.js";
import { benchTokens } from "../src/engine/bench.js";
import { GgmlType } from "../src/gguf/index.js";
import { pureQuant } from "../src/synth/mix.js";
import { modelFor } from "./synth-models.js";

const ROOT = resolve(import.meta.dirname, "../..");
const quick = process.env.BENCH_SERVE_QUICK === "1";
const MODEL = process.env.BENCH_SERVE_MODEL ?? (quick ? resolve(ROOT, "../shared/models/stories260K.gguf") : modelFor({ preset: "tinyllama-1.1b", quant: pureQuant(GgmlType.Q4_0, "Q4_0") }));
const STREAMS = quick ? [1, 4] : [1, 4, 8, 16];
const PROMPT = 128;
const GENERATE = 128;
const THREADS = Number(process.env.BENCH_THREADS ?? availableParallelism());

interface StreamTimes {
  start: number;
  tokens: number[];
}

interface Figures {
  tokensPerSecond: number;
  ttft: number[];
  itl: number[];
}

function figures(streams: StreamTimes[]): Figures {
  const begin = Math.min(...streams.map((s) => s.start));
  const end = Math.max(...streams.map((s) => s.tokens[s.tokens.length - 1] ?? s.start));
  const total = streams.reduce((n, s) => n + s.tokens.length, 0);
  return {
    tokensPerSecond: total / ((end - begin) / 1000),
    ttft: streams.map((s) => s.tokens[0] - s.start),
    itl: streams.flatMap((s) => s.tokens.slice(1).map((t, i) => t - s.tokens[i])),
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const { file, tokenizer } = loadTokenizer(MODEL);
file.close();
const eos = tokenizer.vocab.specials.eos ?? 2;
const avoid = new Set(tokenizer.vocab.specialsByLength);
/** n prompts that share no prefix with each other nor with another round's (`round`), so no cache helps. */
const prompts = (n: number, round: number): number[][] =>
  Array.from({ length: n }, (_, i) => {
    const skip = round * 64 + i;
    return benchTokens(PROMPT + skip, tokenizer.vocab.size, avoid).slice(skip);
  });

async function startServer(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, [join(ROOT, "bin", "tsllm.js"), "serve", MODEL, "--port", "0", "--parallel", String(Math.max(...STREAMS)), "-c", String(Math.max(...STREAMS) * (PROMPT + GENERATE + 16)), "-t", String(THREADS)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const url = await new Promise<string>((done, fail) => {
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      const match = /listening on (http:\/\/[\d.:]+)/.exec(stderr);
      if (match) done(match[1]);
    });
    child.once("exit", () => fail(new Error(stderr)));
  });
  return { url, stop: () => child.kill("SIGTERM") };
}

async function tsllmStreams(url: string, n: number, round: number): Promise<StreamTimes[]> {
  const name = MODEL.split("/").pop()?.replace(/\.gguf$/, "");
  return Promise.all(
    prompts(n, round).map(async (prompt) => {
      const times: StreamTimes = { start: performance.now(), tokens: [] };
      const response = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: name, prompt, max_tokens: GENERATE, temperature: 0, stream: true, logit_bias: { [eos]: -100 } }),
      });
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const bytes of response.body as ReadableStream<Uint8Array>) {
        buffered += decoder.decode(bytes, { stream: true });
        let cut;
        while ((cut = buffered.indexOf("\n\n")) >= 0) {
          const event = buffered.slice(0, cut);
          buffered = buffered.slice(cut + 2);
          if (event.includes('"finish_reason":null')) times.tokens.push(performance.now());
        }
      }
      return times;
    }),
  );
}

const llamaModel = (await openNativeLlamaCpp()).loadModel(MODEL);
/** Tokens a llama.cpp step takes at most (llama-server's n_batch; tsllm serve's --batch-tokens default). */
const LLAMA_BATCH = 512;

/**
 * llama-server's loop, greedy and with end-of-generation banned as the tsllm requests ask: every step is
 * one llama_decode of each generating stream's last token, then prompt tokens, stream by stream, up to
 * the batch; a stream's next token comes from the logits of its last entry.
 */
async function llamaCppStreams(n: number, round: number): Promise<StreamTimes[]> {
  const context = llamaModel.createContext({ contextSize: n * (PROMPT + GENERATE + 8), sequences: n, threads: THREADS, batchSize: LLAMA_BATCH });
  try {
    await untilOurWorkersSleep(); // the server's, after its last request
    const start = performance.now();
    const streams = prompts(n, round).map((prompt, sequence) => ({ sequence, prompt, fed: 0, next: -1, times: { start, tokens: [] as number[] } }));
    while (streams.some(({ times }) => times.tokens.length < GENERATE)) {
      const entries: BatchEntry[] = [];
      const readers: { stream: (typeof streams)[number]; row: number }[] = [];
      for (const stream of streams) {
        if (stream.fed < stream.prompt.length || stream.times.tokens.length >= GENERATE) continue;
        readers.push({ stream, row: entries.length });
        entries.push({ token: stream.next, position: stream.prompt.length + stream.times.tokens.length - 1, sequence: stream.sequence, logits: true });
      }
      for (const stream of streams) {
        while (stream.fed < stream.prompt.length && entries.length < LLAMA_BATCH) {
          const last = stream.fed === stream.prompt.length - 1;
          if (last) readers.push({ stream, row: entries.length });
          entries.push({ token: stream.prompt[stream.fed], position: stream.fed, sequence: stream.sequence, logits: last });
          stream.fed++;
        }
      }
      context.decodeEntries(entries);
      const now = performance.now();
      for (const { stream, row } of readers) {
        const logits = context.logitsAt(row);
        logits[eos] = -Infinity;
        stream.next = argmax(logits);
        stream.times.tokens.push(now);
      }
    }
    return streams.map(({ times }) => times);
  } finally {
    context.dispose();
    // The round held this thread for seconds: let the event loop catch up first, or the next request may
    // go out on a keep-alive socket the server closed meanwhile ("other side closed").
    await sleep(100);
  }
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

const server = await startServer();
const rows: string[] = ["| streams | engine | gen tok/s (all streams) | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"];
const ratios: string[] = ["| streams | tsllm / llama.cpp | tsllm vs its 1 stream (mean of just before and just after) | its 1 stream before, after (tok/s) |", "| ---: | ---: | ---: | ---: |"];
let single = 0;
try {
  await tsllmStreams(server.url, 1, 0); // loads the model and warms up
  await llamaCppStreams(1, 0);
  for (const [round, n] of STREAMS.entries()) {
    // The machine's speed drifts over minutes, so each figure of several streams is set against single
    // streams measured just before and just after it (their mean), not the first row's: a drift in
    // either direction then weighs on both sides of the ratio.
    const before = n > 1 ? figures(await tsllmStreams(server.url, 1, STREAMS.length + round + 1)).tokensPerSecond : 0;
    const ours = figures(await tsllmStreams(server.url, n, round + 1));
    const theirs = figures(await llamaCppStreams(n, round + 1));
    const after = n > 1 ? figures(await tsllmStreams(server.url, 1, 2 * STREAMS.length + round + 1)).tokensPerSecond : 0;
    single = n > 1 ? (before + after) / 2 : ours.tokensPerSecond;
    for (const [engine, f] of [["tsllm", ours], ["llama.cpp", theirs]] as const) {
      rows.push(`| ${n} | ${engine} | ${f.tokensPerSecond.toFixed(1)} | ${percentile(f.ttft, 50).toFixed(0)} | ${percentile(f.ttft, 99).toFixed(0)} | ${percentile(f.itl, 50).toFixed(1)} | ${percentile(f.itl, 99).toFixed(1)} |`);
    }
    const singles = n > 1 ? `${before.toFixed(1)}, ${after.toFixed(1)}` : "";
    ratios.push(`| ${n} | ${(ours.tokensPerSecond / theirs.tokensPerSecond).toFixed(2)}× | ${(ours.tokensPerSecond / single).toFixed(2)}× | ${singles} |`);
    process.stderr.write(`${n} streams done\n`);
  }
} finally {
  server.stop();
  llamaModel.dispose();
}
process.stdout.write(`model ${MODEL}, ${THREADS} threads, ${PROMPT} prompt + ${GENERATE} generated tokens a stream\n\n${rows.join("\n")}\n\n${ratios.join("\n")}\n`);
