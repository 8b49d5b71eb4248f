import { KvCache } from "../kv/kv-cache.js";
import { BatchSequence, LanguageModel } from "../models/model.js";
import { JsonPrefix } from "../sampling/json-prefix.js";
import { Sampler, SamplingParams, topLogprobs } from "../sampling/sampler.js";
import { StreamDecoder } from "../tokenizer/stream-decoder.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { EventChannel } from "./channel.js";
import { StopStringFilter } from "./stop-strings.js";

export interface GenerationRequest {
  prompt: number[];
  /** Tokens to generate at most; Infinity: until end of generation or the context is full. */
  maxTokens: number;
  sampling: SamplingParams;
  stop?: readonly string[];
  /** Report the chosen token's log-probability and the top K alternatives. */
  logprobs?: number;
  logitBias?: ReadonlyMap<number, number>;
  /** Constrain the answer to one JSON object, and end it there (Ollama's format "json"). */
  json?: boolean;
  ignoreEos?: boolean;
  signal?: AbortSignal;
}

export interface TokenLogprob {
  id: number;
  logprob: number;
}

export type GenerationEvent =
  | { type: "token"; id: number; text: string; logprob?: number; top?: TokenLogprob[] }
  | { type: "done"; stats: GenerationSummary };

export interface GenerationSummary {
  finishReason: "stop" | "length" | "cancelled";
  promptTokens: number;
  /** Prompt tokens whose keys and values were already in the slot's cache (not computed again). */
  cachedTokens: number;
  generatedTokens: number;
  /** Waiting for a slot. */
  queuedMs: number;
  /** From taking a slot to the first token. */
  promptMs: number;
  /** From the first token to the last. */
  generationMs: number;
}

export class QueueFullError extends Error {}
export class ContextOverflowError extends Error {
  constructor(
    readonly promptTokens: number,
    readonly contextSize: number,
  ) {
    super(`the prompt has ${promptTokens} tokens; the context holds ${contextSize} (and at least one token must be generated)`);
  }
}

export interface SchedulerOptions {
  /** Sequences computed together at most (llama-server's slots, vLLM's max_num_seqs). */
  parallel: number;
  /** Tokens per forward pass: decodes first, then chunks of waiting prompts. */
  batchTokens: number;
  /** Requests that may wait for a slot; past it, submit throws QueueFullError. */
  queueLimit: number;
  /** Tokens each slot's cache holds: the longest prompt + answer. */
  contextSize: number;
}

/** A slot's cache outlives its request: the next request with the same prefix reuses it. */
interface Slot {
  cache?: KvCache;
  /** The tokens whose keys and values the cache holds. */
  tokens: number[];
  lastUsed: number;
  busy: boolean;
}

interface Sequence {
  request: GenerationRequest;
  channel: EventChannel<GenerationEvent>;
  slot: Slot;
  /** Prompt tokens in the cache so far (reused ones included). */
  fed: number;
  cachedTokens: number;
  history: number[];
  /** The last sampled token, fed in the next step. */
  pending?: number;
  generated: number;
  sampler: Sampler;
  decoder: StreamDecoder;
  stops: StopStringFilter;
  json?: JsonPrefix;
  submittedAt: number;
  admittedAt: number;
  firstTokenAt?: number;
}

interface Waiting {
  request: GenerationRequest;
  channel: EventChannel<GenerationEvent>;
  submittedAt: number;
}

/** Candidates tried against the JSON state before the whole vocabulary is. */
const JSON_CANDIDATES = 256;

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

function logprobOf(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[id] - max - Math.log(sum);
}

/**
 * Continuous batching: every step is one forward pass over the next token of each running sequence
 * and chunks of prompts still being read, within a token budget. Requests join and leave between steps.
 * The scheduler decides; the model computes.
 */
export class Scheduler {
  private readonly slots: Slot[];
  private readonly running: Sequence[] = [];
  private readonly waiting: Waiting[] = [];
  private looping = false;
  private closed = false;

  constructor(
    private readonly model: LanguageModel,
    private readonly tokenizer: Tokenizer,
    readonly options: SchedulerOptions,
  ) {
    this.slots = Array.from({ length: options.parallel }, () => ({ tokens: [], lastUsed: 0, busy: false }));
  }

  get load(): { running: number; waiting: number; cachedSlots: number } {
    return { running: this.running.length, waiting: this.waiting.length, cachedSlots: this.slots.filter((s) => !s.busy && s.tokens.length > 0).length };
  }

  /** Queues a request; its tokens arrive as events. Throws at once when it cannot be taken. */
  submit(request: GenerationRequest): AsyncIterable<GenerationEvent> {
    if (this.closed) throw new QueueFullError("the model is unloading");
    if (request.prompt.length === 0) throw new RangeError("the prompt is empty");
    if (request.prompt.length >= this.options.contextSize) throw new ContextOverflowError(request.prompt.length, this.options.contextSize);
    if (this.waiting.length >= this.options.queueLimit) throw new QueueFullError(`${this.waiting.length} requests are already waiting`);
    const channel = new EventChannel<GenerationEvent>();
    this.waiting.push({ request, channel, submittedAt: performance.now() });
    this.kick();
    return channel;
  }

  /** Ends every request and frees the caches. */
  close(): void {
    this.closed = true;
    for (const sequence of this.running) sequence.request.signal = AbortSignal.abort();
    for (const waiting of this.waiting.splice(0)) waiting.channel.close();
    if (!this.looping) this.releaseSlots();
  }

  private releaseSlots(): void {
    for (const slot of this.slots) {
      slot.cache?.dispose();
      slot.cache = undefined;
      slot.tokens = [];
    }
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.admit();
        this.dropCancelled();
        if (this.running.length === 0) break;
        this.step();
        await new Promise((resolve) => setImmediate(resolve)); // lets I/O (new requests, disconnects) in between steps
      }
    } finally {
      this.looping = false;
      if (this.closed) this.releaseSlots();
      else if (this.waiting.length > 0) this.kick();
    }
  }

  /** Takes waiting requests into free slots, each into the slot whose cache shares the longest prefix with it. */
  private admit(): void {
    while (this.waiting.length > 0) {
      const free = this.slots.filter((s) => !s.busy);
      if (free.length === 0) return;
      const next = this.waiting.shift() as Waiting;
      if (next.request.signal?.aborted) {
        next.channel.push({ type: "done", stats: this.summary(next.request, 0, 0, next.submittedAt, performance.now(), undefined, "cancelled") });
        next.channel.close();
        continue;
      }
      const prompt = next.request.prompt;
      let slot = free[0];
      let best = -1;
      for (const candidate of free) {
        const shared = commonPrefixLength(candidate.tokens, prompt);
        if (shared > best || (shared === best && candidate.lastUsed < slot.lastUsed)) {
          slot = candidate;
          best = shared;
        }
      }
      slot.busy = true;
      slot.cache ??= this.model.createCache(this.options.contextSize);
      // the last prompt token is always computed again: its logits are where generation starts
      const reused = Math.min(commonPrefixLength(slot.tokens, prompt), prompt.length - 1);
      slot.cache.truncate(reused);
      slot.tokens.length = reused;
      const { request, channel, submittedAt } = next;
      this.running.push({
        request,
        channel,
        slot,
        fed: reused,
        cachedTokens: reused,
        history: [...prompt],
        generated: 0,
        sampler: new Sampler(request.sampling),
        decoder: new StreamDecoder(this.tokenizer),
        stops: new StopStringFilter(request.stop ?? []),
        json: request.json ? new JsonPrefix() : undefined,
        submittedAt,
        admittedAt: performance.now(),
      });
    }
  }

  private dropCancelled(): void {
    for (const sequence of [...this.running]) {
      if (sequence.request.signal?.aborted) this.finish(sequence, "cancelled");
    }
  }

  /** One forward pass: each decoding sequence's pending token, then prompt chunks while the budget lasts. */
  private step(): void {
    let budget = this.options.batchTokens;
    const batch: { sequence: Sequence; tokens: number[]; samples: boolean }[] = [];
    for (const sequence of this.running) {
      if (sequence.pending === undefined || budget <= 0) continue;
      batch.push({ sequence, tokens: [sequence.pending], samples: true });
      budget--;
    }
    for (const sequence of this.running) {
      const { prompt } = sequence.request;
      if (sequence.fed >= prompt.length || budget <= 0) continue;
      const chunk = prompt.slice(sequence.fed, sequence.fed + budget);
      sequence.fed += chunk.length;
      budget -= chunk.length;
      batch.push({ sequence, tokens: chunk, samples: sequence.fed === prompt.length });
    }
    if (batch.length === 0) return;
    const inputs: BatchSequence[] = batch.map(({ sequence, tokens }) => ({ tokens, cache: sequence.slot.cache as KvCache }));
    const logits = this.model.forwardBatch(inputs);
    batch.forEach(({ sequence, tokens, samples }, i) => {
      sequence.slot.tokens.push(...tokens);
      sequence.pending = undefined;
      if (samples) this.sample(sequence, logits[i]);
    });
  }

  private sample(sequence: Sequence, logits: Float32Array): void {
    const { request } = sequence;
    if (request.logitBias) for (const [id, bias] of request.logitBias) if (id >= 0 && id < logits.length) logits[id] += bias;
    if (sequence.json) this.maskToJson(sequence.json, logits);
    const top = request.logprobs !== undefined ? topLogprobs(logits, request.logprobs) : undefined;
    const id = sequence.sampler.sample(logits, sequence.history);
    const logprob = request.logprobs !== undefined ? logprobOf(logits, id) : undefined;
    sequence.firstTokenAt ??= performance.now();
    if (!request.ignoreEos && this.tokenizer.isEndOfGeneration(id)) {
      this.finish(sequence, "stop");
      return;
    }
    sequence.generated++;
    sequence.history.push(id);
    const text = sequence.stops.push(sequence.decoder.push(id));
    sequence.channel.push({ type: "token", id, text, logprob, top });
    if (sequence.stops.stopped) return this.finish(sequence, "stop");
    if (sequence.json) {
      sequence.json.pushBytes(this.tokenizer.tokenBytes(id));
      if (sequence.json.complete) return this.finish(sequence, "stop");
    }
    const full = sequence.slot.tokens.length + 1 >= this.options.contextSize;
    if (sequence.generated >= request.maxTokens || full) return this.finish(sequence, "length");
    sequence.pending = id;
  }

  /**
   * Leaves only tokens that continue the JSON so far (end of generation only once it is complete). The
   * likeliest tokens are tried first; the whole vocabulary only when none of those fits.
   */
  private maskToJson(state: JsonPrefix, logits: Float32Array): void {
    const fits = (id: number): boolean => {
      if (this.tokenizer.isEndOfGeneration(id)) return state.complete;
      const bytes = this.tokenizer.tokenBytes(id, false);
      return bytes.length > 0 && state.clone().pushBytes(bytes);
    };
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    let allowed = order.slice(0, JSON_CANDIDATES).filter(fits);
    if (allowed.length === 0) allowed = order.filter(fits);
    const kept = allowed.map((id) => logits[id]);
    logits.fill(-Infinity);
    allowed.forEach((id, i) => (logits[id] = kept[i]));
  }

  private summary(request: GenerationRequest, cachedTokens: number, generated: number, submittedAt: number, admittedAt: number, firstTokenAt: number | undefined, finishReason: GenerationSummary["finishReason"]): GenerationSummary {
    const now = performance.now();
    return {
      finishReason,
      promptTokens: request.prompt.length,
      cachedTokens,
      generatedTokens: generated,
      queuedMs: admittedAt - submittedAt,
      promptMs: (firstTokenAt ?? now) - admittedAt,
      generationMs: firstTokenAt === undefined ? 0 : now - firstTokenAt,
    };
  }

  private finish(sequence: Sequence, reason: GenerationSummary["finishReason"]): void {
    const tail = sequence.stops.push(sequence.decoder.flush()) + sequence.stops.flush();
    if (tail !== "" && reason !== "cancelled") sequence.channel.push({ type: "token", id: -1, text: tail });
    sequence.channel.push({
      type: "done",
      stats: this.summary(sequence.request, sequence.cachedTokens, sequence.generated, sequence.submittedAt, sequence.admittedAt, sequence.firstTokenAt, reason),
    });
    sequence.channel.close();
    this.running.splice(this.running.indexOf(sequence), 1);
    const { slot } = sequence;
    slot.busy = false;
    slot.lastUsed = performance.now(); // a prompt cut short still leaves cache and slot.tokens in step
  }
}
