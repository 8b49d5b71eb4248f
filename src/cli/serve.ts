import { serve } from "@hono/node-server";
import { parseArgs } from "node:util";
import { KV_TYPES } from "../backend/kv-format.js";
import { keepAliveMs } from "../server/routes/ollama.js";
import { createApp } from "../server/app.js";
import { ModelPool } from "../server/model-pool.js";
import { UsageError } from "./fail.js";
import { numberOption, parseSize } from "./options.js";

export const SERVE_USAGE = `tsllm serve [MODEL …] [--host 127.0.0.1] [--port 8080] [--alias NAME] [--parallel 4] [-c 8192]
            [--kv-memory SIZE] [--kv-type f16|q8_0] [--batch-tokens 512] [--queue 64] [--keep-alive 5m] [--api-key KEY] [--cors ORIGIN] [-t THREADS]
  OpenAI (/v1/chat/completions, /v1/completions, /v1/models) and Ollama (/api/generate, /api/chat, /api/tags …)
  APIs, /health and /metrics; requests pick a model by name; models load on first use.
  -c is the KV pool's size in tokens (or --kv-memory 2G in bytes), shared by all sequences in blocks of 16;
  one sequence may use up to the model's context of it. --kv-type q8_0 stores keys and values as Q8_0
  blocks (llama.cpp's -ctk q8_0 -ctv q8_0): 53% of F16's memory, for heads whose size is a multiple of 32`;

export async function serveCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8080" },
      alias: { type: "string", multiple: true },
      parallel: { type: "string", default: "4" },
      "ctx-size": { type: "string", short: "c", default: "8192" },
      "kv-memory": { type: "string" },
      "kv-type": { type: "string", default: "f16" },
      "batch-tokens": { type: "string", default: "512" },
      queue: { type: "string", default: "64" },
      "keep-alive": { type: "string", default: "5m" },
      "api-key": { type: "string" },
      cors: { type: "string" },
      "max-body": { type: "string", default: "4194304" },
      threads: { type: "string", short: "t" },
    },
  });
  const whole = (value: string, flag: string, min: number): number => {
    const n = numberOption(value, flag, min);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number of at least ${min}`);
    return n;
  };
  const keepAlive = keepAliveMs(values["keep-alive"], 300_000);
  const kvType = KV_TYPES.find((type) => type === values["kv-type"]);
  if (!kvType) throw new UsageError(`--kv-type must be one of ${KV_TYPES.join(", ")}`);
  const pool = new ModelPool({
    scheduler: {
      parallel: whole(values.parallel, "--parallel", 1),
      batchTokens: whole(values["batch-tokens"], "--batch-tokens", 1),
      queueLimit: whole(values.queue, "--queue", 0),
      kvTokens: whole(values["ctx-size"], "--ctx-size", 16),
      kvType,
    },
    threads: values.threads === undefined ? undefined : whole(values.threads, "--threads", 1),
    kvMemoryBytes: values["kv-memory"] === undefined ? undefined : parseSize(values["kv-memory"], "--kv-memory"),
    keepAliveMs: keepAlive,
  });
  const aliases = values.alias ?? [];
  for (const [i, reference] of positionals.entries()) {
    const served = await pool.add(reference, aliases[i]);
    process.stderr.write(`serving ${served.name} (${served.resolved.paths.join(", ")})\n`);
  }
  const { app } = createApp(pool, {
    apiKey: values["api-key"],
    corsOrigin: values.cors,
    maxBodyBytes: whole(values["max-body"], "--max-body", 1024),
    keepAliveMs: keepAlive,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const port = whole(values.port, "--port", 0);
  if (port > 65535) throw new UsageError(`--port must be a TCP port, 0 to 65535 (0: any free one), got ${port}`);
  const server = serve({ fetch: app.fetch, hostname: values.host, port }, (info) => {
    process.stderr.write(`listening on http://${values.host}:${info.port}\n`);
  });
  await new Promise<void>((resolve) => {
    const stop = () => {
      server.close();
      if ("closeAllConnections" in server) server.closeAllConnections();
      pool.close();
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
