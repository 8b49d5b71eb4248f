import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { ApiError, openAiError } from "./errors.js";
import { Metrics } from "./metrics.js";
import { ModelPool } from "./model-pool.js";
import { ollamaRoutes } from "./routes/ollama.js";
import { openAiRoutes } from "./routes/openai.js";

export interface ServerOptions {
  apiKey?: string;
  corsOrigin?: string;
  maxBodyBytes: number;
  keepAliveMs: number;
  log: (line: string) => void;
}

const isOpenAiPath = (path: string): boolean => path.startsWith("/v1/");

/** The HTTP layer: it translates requests for the scheduler and answers in each API's own shape. */
export function createApp(pool: ModelPool, options: ServerOptions): { app: Hono; metrics: Metrics } {
  const metrics = new Metrics();
  const app = new Hono();

  // one structured line a request
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const route = c.req.routePath || c.req.path;
    metrics.request(route, c.res.status);
    options.log(JSON.stringify({ time: new Date().toISOString(), method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) }));
  });
  if (options.corsOrigin) app.use(cors({ origin: options.corsOrigin }));
  app.use(async (c, next) => {
    if (options.apiKey && c.req.path !== "/health" && c.req.header("authorization") !== `Bearer ${options.apiKey}`) {
      throw new ApiError(401, "a valid API key is required (Authorization: Bearer …)", "invalid_api_key");
    }
    await next();
  });
  app.use(
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: () => {
        throw new ApiError(413, `the request body is larger than ${options.maxBodyBytes} bytes`, "request_too_large");
      },
    }),
  );

  app.get("/", (c) => c.text("tsllm is running (OpenAI and Ollama APIs)"));
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/metrics", async (c) => {
    const total = { running: 0, waiting: 0, blocksUsed: 0, blocksCached: 0, blocks: 0, preemptions: 0 };
    for (const served of pool.loaded()) {
      const load = served.loaded?.scheduler.load;
      if (load) for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += load[key];
    }
    metrics.running.set(total.running);
    metrics.waiting.set(total.waiting);
    metrics.blocksUsed.set(total.blocksUsed);
    metrics.blocksCached.set(total.blocksCached);
    metrics.blocks.set(total.blocks);
    metrics.preemptions.set(total.preemptions);
    return c.text(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType });
  });
  app.route("/", openAiRoutes(pool, metrics));
  app.route("/", ollamaRoutes(pool, metrics, options.keepAliveMs));

  app.notFound((c) => {
    const error = new ApiError(404, `no route for ${c.req.method} ${c.req.path}`, "not_found");
    return isOpenAiPath(c.req.path) ? c.json(openAiError(error), 404) : c.json({ error: error.message }, 404);
  });
  app.onError((err, c) => {
    const error = err instanceof ApiError ? err : new ApiError(500, "internal error", "internal_error");
    if (!(err instanceof ApiError)) options.log(JSON.stringify({ time: new Date().toISOString(), error: err.stack ?? String(err) }));
    if (error.retryAfter !== undefined) c.header("retry-after", String(error.retryAfter));
    return isOpenAiPath(c.req.path) ? c.json(openAiError(error), error.status) : c.json({ error: error.message }, error.status);
  });
  return { app, metrics };
}
