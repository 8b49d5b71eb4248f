import { Context } from "hono";
import { ContextOverflowError, GenerationEvent, GenerationRequest, GenerationSummary, QueueFullError, Scheduler, TokenLogprob } from "../engine/scheduler.js";
import { DEFAULT_SAMPLING, SamplingParams } from "../sampling/sampler.js";
import { ApiError } from "./errors.js";

/** A controller that aborts when the client goes away, for the scheduler to drop the request. */
export function abortWithClient(c: Context): AbortController {
  const abort = new AbortController();
  c.req.raw.signal.addEventListener("abort", () => abort.abort());
  return abort;
}

/** Sampling fields as both APIs name them, normalised. */
export interface SamplingFields {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  repeatPenalty?: number;
  repeatLastN?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
}

/** llama.cpp's defaults where a request is silent, as llama-server does. */
export function samplingFrom(fields: SamplingFields, seedOffset = 0): SamplingParams {
  return {
    ...DEFAULT_SAMPLING,
    temperature: fields.temperature ?? DEFAULT_SAMPLING.temperature,
    topP: fields.topP ?? DEFAULT_SAMPLING.topP,
    topK: fields.topK ?? DEFAULT_SAMPLING.topK,
    minP: fields.minP ?? DEFAULT_SAMPLING.minP,
    repeatPenalty: fields.repeatPenalty ?? DEFAULT_SAMPLING.repeatPenalty,
    repeatLastN: fields.repeatLastN ?? DEFAULT_SAMPLING.repeatLastN,
    presencePenalty: fields.presencePenalty ?? DEFAULT_SAMPLING.presencePenalty,
    frequencyPenalty: fields.frequencyPenalty ?? DEFAULT_SAMPLING.frequencyPenalty,
    seed: fields.seed === undefined ? undefined : fields.seed + seedOffset,
  };
}

/** Submits to the scheduler, turning its refusals into the API's answers. */
export function submit(scheduler: Scheduler, request: GenerationRequest): AsyncIterable<GenerationEvent> {
  try {
    return scheduler.submit(request);
  } catch (error) {
    if (error instanceof ContextOverflowError) {
      throw new ApiError(400, `the prompt has ${error.promptTokens} tokens, more than the context of ${error.contextSize} tokens allows`, "context_length_exceeded", "messages");
    }
    if (error instanceof QueueFullError) throw new ApiError(503, `the server is busy: ${error.message}; retry later`, "server_overloaded", undefined, 1);
    if (error instanceof RangeError) throw new ApiError(400, error.message, "invalid_prompt");
    throw error;
  }
}

export interface TokenOut {
  id: number;
  text: string;
  logprob?: number;
  top?: TokenLogprob[];
}

export interface Collected {
  text: string;
  tokens: TokenOut[];
  summary: GenerationSummary;
}

/** A whole answer: its text, its tokens and how it ended. */
export async function collect(events: AsyncIterable<GenerationEvent>): Promise<Collected> {
  let text = "";
  const tokens: TokenOut[] = [];
  for await (const event of events) {
    if (event.type === "done") return { text, tokens, summary: event.stats };
    text += event.text;
    tokens.push(event);
  }
  throw new ApiError(503, "the model was unloaded while answering", "model_unloaded");
}
