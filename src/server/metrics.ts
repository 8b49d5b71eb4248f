import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { GenerationSummary } from "../engine/scheduler.js";

/** The server's Prometheus metrics (`GET /metrics`). */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: "tsllm_requests_total", help: "HTTP requests by route and status", labelNames: ["route", "status"], registers: [this.registry] });
  private readonly promptTokens = new Counter({ name: "tsllm_prompt_tokens_total", help: "Prompt tokens received", registers: [this.registry] });
  private readonly cachedTokens = new Counter({ name: "tsllm_prompt_tokens_cached_total", help: "Prompt tokens found in a cache (not computed again)", registers: [this.registry] });
  private readonly generatedTokens = new Counter({ name: "tsllm_generated_tokens_total", help: "Tokens generated", registers: [this.registry] });
  private readonly firstToken = new Histogram({
    name: "tsllm_time_to_first_token_seconds",
    help: "Time from a request's arrival to its first token",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly interToken = new Histogram({
    name: "tsllm_inter_token_latency_seconds",
    help: "Mean time between generated tokens, per request",
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
    registers: [this.registry],
  });
  readonly running = new Gauge({ name: "tsllm_requests_running", help: "Requests being computed", registers: [this.registry] });
  readonly waiting = new Gauge({ name: "tsllm_requests_waiting", help: "Requests waiting for a slot", registers: [this.registry] });
  /** Share of prompt tokens read from a cache since the start. */
  private readonly hitRatio = new Gauge({
    name: "tsllm_prefix_cache_hit_ratio",
    help: "Prompt tokens found in a cache over all prompt tokens, since start",
    registers: [this.registry],
    collect: () => this.updateHitRatio(),
  });
  private promptTotal = 0;
  private cachedTotal = 0;
  readonly blocksUsed = new Gauge({ name: "tsllm_kv_blocks_used", help: "KV blocks held by running sequences", registers: [this.registry] });
  readonly blocksCached = new Gauge({ name: "tsllm_kv_blocks_cached", help: "Free KV blocks still holding a reusable prefix", registers: [this.registry] });
  readonly preemptions = new Gauge({ name: "tsllm_preemptions", help: "Sequences sent back to wait for KV blocks (loaded models, since load)", registers: [this.registry] });
  readonly blocks = new Gauge({ name: "tsllm_kv_blocks", help: "KV blocks in the pools of loaded models", registers: [this.registry] });

  request(route: string, status: number): void {
    this.requests.inc({ route, status: String(status) });
  }

  private updateHitRatio(): void {
    this.hitRatio.set(this.promptTotal > 0 ? this.cachedTotal / this.promptTotal : 0);
  }

  observe(summary: GenerationSummary): void {
    this.promptTotal += summary.promptTokens;
    this.cachedTotal += summary.cachedTokens;
    this.promptTokens.inc(summary.promptTokens);
    this.cachedTokens.inc(summary.cachedTokens);
    this.generatedTokens.inc(summary.generatedTokens);
    if (summary.generatedTokens > 0) this.firstToken.observe((summary.queuedMs + summary.promptMs) / 1000);
    if (summary.generatedTokens > 1) this.interToken.observe(summary.generationMs / 1000 / (summary.generatedTokens - 1));
  }
}
