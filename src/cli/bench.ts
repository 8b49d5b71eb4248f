import { statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { WasmBackend } from "../backend/wasm/wasm-backend.js";
import { benchTest, benchTokenCount, benchTokens, BenchResult, BenchTest, runBenchTest, summarize } from "../engine/bench.js";
import { createBackend, loadModel } from "../engine/load.js";
import { openLlamaCppBench } from "./bench-llama-cpp.js";
import { UsageError } from "./fail.js";
import { resolveModelArgument } from "./model-path.js";
import { backendOption, numberOption } from "./options.js";
import { describeModel } from "./show.js";

export const BENCH_USAGE = `tsllm bench MODEL.gguf [-p 512] [-n 128] [-d 0] [-r 5] [-t THREADS] [-o md|json] [--compare] [--backend wasm|scalar] [--verbose]`;

interface Row {
  engine: "tsllm" | "llama.cpp";
  threads: number;
  result: BenchResult;
}

export async function benchCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "n-prompt": { type: "string", short: "p", default: "512" },
      "n-gen": { type: "string", short: "n", default: "128" },
      "n-depth": { type: "string", short: "d", default: "0" },
      repetitions: { type: "string", short: "r", default: "5" },
      threads: { type: "string", short: "t" },
      output: { type: "string", short: "o", default: "md" },
      compare: { type: "boolean" },
      backend: { type: "string", default: "wasm" },
      verbose: { type: "boolean" },
    },
  });
  const resolved = await resolveModelArgument(positionals[0]);
  const path = resolved.paths[0];
  const fileBytes = resolved.paths.reduce((sum, p) => sum + statSync(p).size, 0);
  const promptTokens = numberOption(values["n-prompt"], "-p", 512);
  const genTokens = numberOption(values["n-gen"], "-n", 128);
  const depth = numberOption(values["n-depth"], "-d", 0);
  const reps = Math.max(1, numberOption(values.repetitions, "-r", 5));
  const threads = numberOption(values.threads, "-t", availableParallelism());
  if (values.output !== "md" && values.output !== "json") throw new UsageError("-o takes md or json");

  const backend = createBackend(backendOption(values.backend), threads);
  if (values.verbose && backend instanceof WasmBackend) {
    const dispatch = backend.measureDispatch();
    process.stderr.write(`wasm backend: ${backend.threads} threads, empty dispatch round trip ${dispatch.median.toFixed(1)} µs median, ${dispatch.mean.toFixed(1)} µs mean\n`);
  }
  // what the process holds before the model: Node, the worker threads and the kernels' code
  const runtimeBytes = process.memoryUsage().rss;
  const loaded = loadModel(resolved.paths, backend);
  const tests: BenchTest[] = [];
  if (promptTokens > 0) tests.push(benchTest(promptTokens, 0, depth));
  if (genTokens > 0) tests.push(benchTest(0, genTokens, depth));
  const avoid = new Set(loaded.tokenizer.vocab.specialsByLength);
  const longest = Math.max(0, ...tests.map(benchTokenCount));
  const tokens = benchTokens(longest, loaded.model.vocabSize, avoid);

  // Warm-ups first (as llama-bench does), and the resident memory after them, before llama.cpp shares the process.
  for (const test of tests) runBenchTest(loaded.model, test, tokens);
  if (values.verbose) {
    const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
    const { rss, heapUsed, arrayBuffers } = process.memoryUsage();
    const peak = process.resourceUsage().maxRSS * 1024;
    const fileSize = fileBytes;
    const banks = backend instanceof WasmBackend ? `, ${backend.bankCount} WebAssembly memor${backend.bankCount === 1 ? "y" : "ies"}` : "";
    process.stderr.write(`resident memory after the warm-up runs: ${gib(rss)} (peak ${gib(peak)}) for a ${gib(fileSize)} file: ${(rss / fileSize).toFixed(3)}× (peak ${(peak / fileSize).toFixed(3)}×)${banks}; JS heap ${gib(heapUsed)}, array buffers ${gib(arrayBuffers)}, runtime before loading ${gib(runtimeBytes)}\n`);
    // the budget: 1.15 × the file, plus the largest test's KV cache (its cells, in F16)
    const cells = longest + 1;
    const budget = 1.15 * fileSize + cells * loaded.model.kvBytesPerToken();
    process.stderr.write(`memory budget 1.15 × file + KV cache of ${cells} cells = ${gib(budget)} (${(budget / fileSize).toFixed(3)}× the file): resident ${rss <= budget ? "within it" : "over it"} by ${(Math.abs(budget - rss) / 2 ** 20).toFixed(1)} MiB\n`);
  }
  // With --compare the engines take turns, repetition by repetition, so that both see the machine alike
  // (on a shared machine its speed drifts by tens of percent over minutes).
  const theirs = values.compare ? await openLlamaCppBench(path, tokens, threads) : undefined;
  const rows: Row[] = [];
  try {
    const ourSamples = tests.map((): number[] => []);
    const theirSamples = tests.map((): number[] => []);
    for (const [i, test] of tests.entries()) {
      if (theirs) await theirs.run(test); // llama.cpp's warm-up
      for (let rep = 0; rep < reps; rep++) {
        ourSamples[i].push(runBenchTest(loaded.model, test, tokens));
        if (theirs) theirSamples[i].push(await theirs.run(test));
      }
    }
    for (const [i, test] of tests.entries()) rows.push({ engine: "tsllm", threads: backend.threads ?? 1, result: summarize(test, ourSamples[i]) });
    if (theirs) for (const [i, test] of tests.entries()) rows.push({ engine: "llama.cpp", threads, result: summarize(test, theirSamples[i]) });
  } finally {
    await theirs?.dispose();
  }
  loaded.file.close();
  backend.dispose?.();

  const info = new Map(describeModel(loaded.file));
  const modelType = `${info.get("architecture")} ${info.get("parameters")} ${info.get("quantization") ?? ""}`.trim();
  if (values.output === "json") {
    const objects = rows.map(({ engine, threads: n, result }) => ({
      engine,
      model_filename: resolved.name,
      model_type: modelType,
      model_size: fileBytes,
      n_threads: n,
      n_prompt: result.promptTokens,
      n_gen: result.genTokens,
      n_depth: result.depth,
      avg_ts: result.mean,
      stddev_ts: result.stddev,
      samples_ts: result.samples,
    }));
    process.stdout.write(`${JSON.stringify(objects, null, 2)}\n`);
    return;
  }
  const lines = [
    `| model | size | engine | threads | test | t/s | weights GB/s |`,
    `| --- | ---: | --- | ---: | --- | ---: | ---: |`,
    ...rows.map(({ engine, threads: n, result }) => {
      const bandwidth = result.genTokens > 0 ? ((fileBytes * result.mean) / 1e9).toFixed(2) : "";
      return `| ${basename(resolved.name)} | ${(fileBytes / 2 ** 20).toFixed(1)} MiB | ${engine} | ${n} | ${result.name} | ${result.mean.toFixed(2)} ± ${result.stddev.toFixed(2)} | ${bandwidth} |`;
    }),
  ];
  if (values.compare) {
    lines.push("", "| test | tsllm / llama.cpp |", "| --- | ---: |");
    for (const test of tests) {
      const ours = rows.find((r) => r.engine === "tsllm" && r.result.name === test.name);
      const theirs = rows.find((r) => r.engine === "llama.cpp" && r.result.name === test.name);
      if (ours && theirs) lines.push(`| ${test.name} | ${(ours.result.mean / theirs.result.mean).toFixed(3)}× |`);
    }
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
