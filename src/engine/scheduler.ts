import { KvType } from "../backend/backend.js";
import { BLOCK_TOKENS, blockHash, PagedKvPool, PagedSequence } from "../kv/paged.js";
import { BatchSequence, LanguageModel } from "../models/model.js";
import { JsonPrefix } from "../sampling/json-prefix.js";
import { logSumExp, Sampler, SamplingParams, topLogprobs } from "../sampling/sampler.js";
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
  /** Prompt tokens whose keys and values were found in the prefix cache (not computed again). */
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
  /** Sequences computed together at most (vLLM's max_num_seqs). */
  parallel: number;
  /** Tokens per forward pass: decodes first, then chunks of waiting prompts. */
  batchTokens: number;
  /** Requests that may wait; past it, submit throws QueueFullError. */
  queueLimit: number;
  /** The longest prompt + answer of one sequence. */
  contextSize: number;
  /** Tokens the shared KV pool holds over all sequences (rounded up to whole blocks). */
  kvTokens: number;
  /** How the pool stores keys and values (F16 when absent). */
  kvType?: KvType;
}

interface Sequence {
  request: GenerationRequest;
  channel: EventChannel<GenerationEvent>;
  kv?: PagedSequence;
  /** What must be in the cache before the next token is sampled: the prompt, and after a preemption the answer so far. */
  input: number[];
  /** Input tokens in the cache so far (reused ones included). */
  fed: number;
  cachedTokens: number;
  /** Every token of the sequence: prompt and answer (the penalties' history too). */
  history: number[];
  /** The last sampled token, fed in the next step. */
  pending?: number;
  generated: number;
  sampler: Sampler;
  decoder: StreamDecoder;
  stops: StopStringFilter;
  json?: JsonPrefix;
  submittedAt: number;
  admittedAt?: number;
  firstTokenAt?: number;
}

/** Candidates tried against the JSON state before the whole vocabulary is. */
const JSON_CANDIDATES = 256;

/** Event-loop turns between steps: a request takes several (connection, headers, body, handler) to arrive. */
const IO_TURNS = 8;

/**
 * Continuous batching over a paged KV cache: every step is one forward pass over the next token of
 * each running sequence and chunks of prompts still being read, within a token budget. Sequences join
 * and leave between steps and take KV blocks from one pool as they grow; a new sequence first takes the
 * cached blocks of its longest known prefix. When the pool runs dry, the newest sequence is preempted:
 * its blocks go back and it is recomputed later, never dropped. The scheduler decides; the model computes.
 */
export class Scheduler {
  private readonly running: Sequence[] = [];
  private readonly waiting: Sequence[] = [];
  private pool?: PagedKvPool;
  private looping = false;
  private closed = false;
  private preemptions = 0;

  constructor(
    private readonly model: LanguageModel,
    private readonly tokenizer: Tokenizer,
    readonly options: SchedulerOptions,
  ) {}

  get load(): { running: number; waiting: number; blocksUsed: number; blocksCached: number; blocks: number; preemptions: number } {
    return {
      preemptions: this.preemptions,
      running: this.running.length,
      waiting: this.waiting.length,
      blocksUsed: this.pool?.used ?? 0,
      blocksCached: this.pool?.cached ?? 0,
      blocks: this.pool?.blocks ?? 0,
    };
  }

  /** Queues a request; its tokens arrive as events. Throws at once when it cannot be taken. */
  submit(request: GenerationRequest): AsyncIterable<GenerationEvent> {
    if (this.closed) throw new QueueFullError("the model is unloading");
    if (request.prompt.length === 0) throw new RangeError("the prompt is empty");
    // token ids come from clients too (a prompt of ids, Ollama's context): one past the vocabulary would
    // fail inside a forward pass, which every running sequence shares
    const outside = request.prompt.find((id) => !(Number.isInteger(id) && id >= 0 && id < this.model.vocabSize));
    if (outside !== undefined) throw new RangeError(`prompt token ${outside} is outside the vocabulary (${this.model.vocabSize} tokens)`);
    const limit = Math.min(this.options.contextSize, this.options.kvTokens);
    if (request.prompt.length >= limit) throw new ContextOverflowError(request.prompt.length, limit);
    if (this.waiting.length >= this.options.queueLimit) throw new QueueFullError(`${this.waiting.length} requests are already waiting`);
    const channel = new EventChannel<GenerationEvent>();
    this.waiting.push({
      request,
      channel,
      input: request.prompt,
      fed: 0,
      cachedTokens: 0,
      history: [...request.prompt],
      generated: 0,
      sampler: new Sampler(request.sampling),
      decoder: new StreamDecoder(this.tokenizer),
      stops: new StopStringFilter(request.stop ?? []),
      json: request.json ? new JsonPrefix() : undefined,
      submittedAt: performance.now(),
    });
    this.kick();
    return channel;
  }

  /** Ends every request and frees the pool. */
  close(): void {
    this.closed = true;
    for (const sequence of this.running) sequence.request.signal = AbortSignal.abort();
    for (const waiting of this.waiting.splice(0)) waiting.channel.close();
    if (!this.looping) this.releasePool();
  }

  private releasePool(): void {
    this.pool?.dispose();
    this.pool = undefined;
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        // I/O first (new requests, disconnects): requests that arrive together, as a client's concurrent
        // streams do, then start in the same step instead of the first one alone in a step of its own
        for (let turn = 0; turn < IO_TURNS; turn++) await new Promise((resolve) => setImmediate(resolve));
        this.dropCancelled();
        this.admit();
        if (this.running.length === 0) break;
        this.step();
      }
    } finally {
      this.looping = false;
      if (this.closed) this.releasePool();
      else if (this.waiting.length > 0) this.kick();
    }
  }

  /** Takes waiting sequences in order while there are free places and blocks for their input. */
  private admit(): void {
    this.pool ??= this.model.createPagedPool(Math.ceil(this.options.kvTokens / BLOCK_TOKENS), this.options.kvType);
    const pool = this.pool;
    while (this.waiting.length > 0 && this.running.length < this.options.parallel) {
      const next = this.waiting[0];
      const input = next.input;
      const kv = new PagedSequence(pool, Math.min(this.options.contextSize, pool.blocks * BLOCK_TOKENS));
      // the longest cached prefix of whole blocks, leaving at least the last input token to compute
      let previous = "";
      for (let b = 0; (b + 1) * BLOCK_TOKENS < input.length; b++) {
        const hash = blockHash(previous, input.slice(b * BLOCK_TOKENS, (b + 1) * BLOCK_TOKENS));
        const block = pool.take(hash);
        if (block === undefined) break;
        kv.push(block);
        kv.hashes.push(hash);
        previous = hash;
      }
      kv.length = kv.blocks.length * BLOCK_TOKENS;
      const needed = Math.ceil(input.length / BLOCK_TOKENS) - kv.blocks.length;
      if (needed > pool.available && this.running.length > 0) {
        kv.release(); // wait for running sequences to give blocks back
        return;
      }
      this.waiting.shift();
      next.kv = kv;
      next.fed = kv.length;
      next.cachedTokens ||= kv.length;
      next.admittedAt ??= performance.now();
      this.running.push(next);
    }
  }

  private dropCancelled(): void {
    for (const sequence of [...this.running]) if (sequence.request.signal?.aborted) this.finish(sequence, "cancelled");
    for (const sequence of [...this.waiting]) {
      if (!sequence.request.signal?.aborted) continue;
      this.waiting.splice(this.waiting.indexOf(sequence), 1);
      this.finish(sequence, "cancelled");
    }
  }

  /** Gives the newest running sequence's blocks back; it waits at the front and is recomputed, answer so far included. */
  private preempt(): boolean {
    const victim = this.running.pop();
    if (!victim) return false;
    this.preemptions++;
    victim.kv?.release();
    victim.kv = undefined;
    victim.input = [...victim.history];
    victim.pending = undefined;
    victim.fed = 0;
    this.waiting.unshift(victim);
    return true;
  }

  /** One forward pass: each decoding sequence's pending token, then input chunks while the budget lasts. */
  private step(): void {
    let budget = this.options.batchTokens;
    const batch: { sequence: Sequence; tokens: number[]; samples: boolean }[] = [];
    const reserve = (sequence: Sequence, count: number): boolean => {
      while (!(sequence.kv as PagedSequence).reserve(count)) {
        if (this.running[this.running.length - 1] === sequence || !this.preempt()) return false;
      }
      return true;
    };
    for (const sequence of [...this.running]) {
      if (sequence.pending === undefined || budget <= 0 || !this.running.includes(sequence)) continue;
      if (!reserve(sequence, 1)) {
        this.preempt();
        continue;
      }
      batch.push({ sequence, tokens: [sequence.pending], samples: true });
      budget--;
    }
    for (const sequence of [...this.running]) {
      if (sequence.fed >= sequence.input.length || budget <= 0 || !this.running.includes(sequence)) continue;
      const chunk = sequence.input.slice(sequence.fed, sequence.fed + budget);
      if (!reserve(sequence, chunk.length)) {
        this.preempt();
        continue;
      }
      sequence.fed += chunk.length;
      budget -= chunk.length;
      batch.push({ sequence, tokens: chunk, samples: sequence.fed === sequence.input.length });
    }
    const live = batch.filter(({ sequence }) => this.running.includes(sequence));
    if (live.length === 0) return;
    const inputs: BatchSequence[] = live.map(({ sequence, tokens }) => ({ tokens, cache: sequence.kv as PagedSequence }));
    const logits = this.model.forwardBatch(inputs);
    live.forEach(({ sequence, samples }, i) => {
      sequence.pending = undefined;
      (sequence.kv as PagedSequence).registerFull(sequence.history);
      if (samples) this.sample(sequence, logits[i]);
    });
    this.model.release(logits);
  }

  private sample(sequence: Sequence, logits: Float32Array): void {
    const { request } = sequence;
    if (request.logitBias) for (const [id, bias] of request.logitBias) if (id >= 0 && id < logits.length) logits[id] += bias;
    if (sequence.json) this.maskToJson(sequence.json, logits);
    // the sampler reads the logits without changing them, so one normaliser serves the top list and the choice
    const logSum = request.logprobs !== undefined ? logSumExp(logits) : undefined;
    const top = logSum !== undefined ? topLogprobs(logits, request.logprobs as number, logSum) : undefined;
    const id = sequence.sampler.sample(logits, sequence.history);
    const logprob = logSum !== undefined ? logits[id] - logSum : undefined;
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
    const full = sequence.history.length >= (sequence.kv as PagedSequence).capacity;
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

  private finish(sequence: Sequence, reason: GenerationSummary["finishReason"]): void {
    const tail = sequence.stops.push(sequence.decoder.flush()) + sequence.stops.flush();
    if (tail !== "" && reason !== "cancelled") sequence.channel.push({ type: "token", id: -1, text: tail });
    const now = performance.now();
    const admittedAt = sequence.admittedAt ?? now;
    sequence.channel.push({
      type: "done",
      stats: {
        finishReason: reason,
        promptTokens: sequence.request.prompt.length,
        cachedTokens: sequence.cachedTokens,
        generatedTokens: sequence.generated,
        queuedMs: admittedAt - sequence.submittedAt,
        promptMs: (sequence.firstTokenAt ?? now) - admittedAt,
        generationMs: sequence.firstTokenAt === undefined ? 0 : now - sequence.firstTokenAt,
      },
    });
    sequence.channel.close();
    const at = this.running.indexOf(sequence);
    if (at >= 0) this.running.splice(at, 1);
    sequence.kv?.release();
    sequence.kv = undefined;
  }
}
