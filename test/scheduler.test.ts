import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadModel } from "../src/engine/load.js";
import { GenerationEvent, Scheduler } from "../src/engine/scheduler.js";
import { BatchSequence } from "../src/models/model.js";
import { DEFAULT_SAMPLING } from "../src/sampling/sampler.js";

const STORIES = "../shared/models/stories260K.gguf";

/** Resolves after `turns` turns of the event loop, as a request does on its way in (connection, headers, body). */
async function eventLoopTurns(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function drain(events: AsyncIterable<GenerationEvent>): Promise<number[]> {
  const ids: number[] = [];
  for await (const event of events) if (event.type === "token") ids.push(event.id);
  return ids;
}

describe("scheduler", () => {
  it("requests that arrive a few event-loop turns apart start in the same forward pass", async () => {
    const { model, tokenizer } = loadModel(STORIES);
    // the real model, with each forward pass's sequences counted
    const passes: number[] = [];
    const forwardBatch = model.forwardBatch.bind(model);
    model.forwardBatch = (inputs: readonly BatchSequence[]) => {
      passes.push(inputs.length);
      return forwardBatch(inputs);
    };
    const scheduler = new Scheduler(model, tokenizer, { parallel: 4, batchTokens: 512, queueLimit: 8, contextSize: 128, kvTokens: 512 });
    const ask = (text: string) => scheduler.submit({ prompt: tokenizer.encode(text, { addSpecial: true }), maxTokens: 4, sampling: { ...DEFAULT_SAMPLING, temperature: 0 }, ignoreEos: true });
    const first = drain(ask("Once upon a time"));
    await eventLoopTurns(3);
    const second = drain(ask("Lily and Ben"));
    await eventLoopTurns(3);
    const third = drain(ask("The cat sat on"));
    const answers = await Promise.all([first, second, third]);
    assert.ok(answers.every((ids) => ids.length === 4));
    assert.equal(passes[0], 3, `the first pass took ${passes[0]} of the 3 requests (passes: ${passes.join(" ")})`);
  });
});
