import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutputParser, OutputParserOptions, ParsedToolCall } from "../src/chat/output-parser.js";

interface Parsed {
  content: string;
  reasoning: string;
  toolCalls: ParsedToolCall[];
}

/** Feeds `chunks` one by one and gathers everything the parser says. */
function run(chunks: string[], options: OutputParserOptions): Parsed {
  const parser = new OutputParser(options);
  let content = "";
  let reasoning = "";
  for (const chunk of chunks) {
    const delta = parser.push(chunk);
    content += delta.content;
    reasoning += delta.reasoning;
  }
  const last = parser.finish();
  return { content: content + last.content, reasoning: reasoning + last.reasoning, toolCalls: last.toolCalls };
}

/** Every way of cutting the text in two, and one character at a time. */
function splits(text: string): string[][] {
  const out = [[text], Array.from(text)];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

const TOOLS = { tools: ["get_weather", "get_time"] };
const PARIS = { name: "get_weather", arguments: '{"city":"Paris"}' };

const CASES: [string, string, OutputParserOptions, Parsed][] = [
  ["Qwen3 reasoning, then the answer", "<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4.", {}, { content: "The answer is 4.", reasoning: "\nLet me add 2 and 2.\n", toolCalls: [] }],
  ["reasoning opened by the prompt (DeepSeek-R1)", "First, think.</think>Done.", { startsInReasoning: true }, { content: "Done.", reasoning: "First, think.", toolCalls: [] }],
  ["reasoning cut off by the length limit", "<think>still thinking", {}, { content: "", reasoning: "still thinking", toolCalls: [] }],
  ["a think tag that does not open the answer is text", "a < b, and <think> is a tag", {}, { content: "a < b, and <think> is a tag", reasoning: "", toolCalls: [] }],
  [
    "Hermes/Qwen tool call after some text",
    'I will check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    TOOLS,
    { content: "I will check.\n", reasoning: "", toolCalls: [PARIS] },
  ],
  [
    "two Hermes calls after reasoning",
    '<think>two lookups</think>\n<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n<tool_call>{"name": "get_time", "arguments": {"zone": "CET"}}</tool_call>',
    TOOLS,
    { content: "", reasoning: "two lookups", toolCalls: [PARIS, { name: "get_time", arguments: '{"zone":"CET"}' }] },
  ],
  ["Llama-3.1 bare JSON call", '{"name": "get_weather", "parameters": {"city": "Paris"}}', TOOLS, { content: "", reasoning: "", toolCalls: [PARIS] }],
  ["Llama-3.1 call after <|python_tag|>", '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}', TOOLS, { content: "", reasoning: "", toolCalls: [PARIS] }],
  ["Mistral [TOOL_CALLS] JSON array", '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}]', TOOLS, { content: "", reasoning: "", toolCalls: [PARIS] }],
  ["Mistral [TOOL_CALLS]name[ARGS]{…}", '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', TOOLS, { content: "", reasoning: "", toolCalls: [PARIS] }],
  ["JSON that names no offered tool stays text", '{"name": "launch_rocket", "parameters": {}}', TOOLS, { content: '{"name": "launch_rocket", "parameters": {}}', reasoning: "", toolCalls: [] }],
  ["without tools in the request, call markup is text", '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>', {}, { content: '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>', reasoning: "", toolCalls: [] }],
  ["a broken call stays text", "<tool_call>{not json}</tool_call> sorry", TOOLS, { content: "<tool_call>{not json}</tool_call> sorry", reasoning: "", toolCalls: [] }],
  ["plain text with a lone bracket and angle", "Use [TOOL] or <tool> freely", TOOLS, { content: "Use [TOOL] or <tool> freely", reasoning: "", toolCalls: [] }],
];

describe("reasoning and tool-call parsing, whatever the chunk boundaries", () => {
  for (const [name, text, options, expected] of CASES) {
    it(name, () => {
      for (const chunks of splits(text)) assert.deepEqual(run(chunks, options), expected, `chunks ${JSON.stringify(chunks)}`);
      assert.deepEqual(new OutputParser(options).feed(text, true), expected, "feed(text, true)");
    });
  }

  it("text that cannot begin a marker is told at once, not held to the end", () => {
    const parser = new OutputParser(TOOLS);
    assert.equal(parser.push("Hello there, friend").content, "Hello there, friend");
    assert.equal(parser.push(" <tool").content, " ");
    assert.equal(parser.push("box>").content, "<toolbox>");
  });
});
