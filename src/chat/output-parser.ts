/** A function call the model wrote, with its arguments as JSON text (OpenAI's shape). */
export interface ParsedToolCall {
  name: string;
  arguments: string;
}

/** What a piece of output turned out to be: answer text, reasoning, or (at the end) tool calls. */
export interface ParsedDelta {
  content: string;
  reasoning: string;
}

export interface OutputParserOptions {
  /** The request offered tools: tool-call markup is parsed out instead of shown. */
  tools?: readonly string[];
  /** The prompt already opened a reasoning block (a template that ends with "<think>"). */
  startsInReasoning?: boolean;
}

const THINK_OPEN = "<think>";
const THINK_CLOSE = "</think>";
const HERMES_OPEN = "<tool_call>";
const HERMES_CLOSE = "</tool_call>";
const MISTRAL_CALLS = "[TOOL_CALLS]";
const PYTHON_TAG = "<|python_tag|>";

type Mode = "start" | "reasoning" | "content" | "hermes" | "tail";

/**
 * Splits a model's streamed output into answer text, reasoning and tool calls, whatever the chunk
 * boundaries: Qwen3/DeepSeek-style `<think>…</think>` reasoning (at the start of the answer), and, when
 * the request offered tools, Hermes/Qwen `<tool_call>{json}</tool_call>` blocks, Mistral's
 * `[TOOL_CALLS]` (a JSON array, or `name[ARGS]{json}`), and Llama-3.1's bare JSON call (optionally after
 * `<|python_tag|>`). Text that might still become a marker is held back until it cannot.
 */
export class OutputParser {
  private mode: Mode;
  private pending = "";
  /** Whitespace after a closed reasoning block or a parsed call is dropped until the text goes on. */
  private skipSpace = false;
  private readonly calls: ParsedToolCall[] = [];
  private readonly tools?: ReadonlySet<string>;

  constructor(options: OutputParserOptions = {}) {
    this.tools = options.tools && options.tools.length > 0 ? new Set(options.tools) : undefined;
    this.mode = options.startsInReasoning ? "reasoning" : "start";
  }

  /** Feeds more output; returns what can be told for certain so far. */
  push(text: string): ParsedDelta {
    this.pending += text;
    return this.drain(false);
  }

  /** The output is complete: everything held back, and the tool calls found. */
  finish(): ParsedDelta & { toolCalls: ParsedToolCall[] } {
    const last = this.drain(true);
    return { ...last, toolCalls: this.calls };
  }

  /** push(text), and when `done` also finish(): what the text and the end of the output told, together. */
  feed(text: string, done: boolean): ParsedDelta & { toolCalls: ParsedToolCall[] } {
    const first = this.push(text);
    if (!done) return { ...first, toolCalls: [] };
    const last = this.finish();
    return { content: first.content + last.content, reasoning: first.reasoning + last.reasoning, toolCalls: last.toolCalls };
  }

  private drain(final: boolean): ParsedDelta {
    const out: ParsedDelta = { content: "", reasoning: "" };
    for (;;) {
      const before = this.pending;
      const mode = this.mode;
      this.step(out, final);
      if (this.pending === before && this.mode === mode) return out;
    }
  }

  /** One move of the state machine; it leaves `pending` and `mode` unchanged when it needs more text. */
  private step(out: ParsedDelta, final: boolean): void {
    const text = this.pending;
    switch (this.mode) {
      case "start": {
        // reasoning opens the answer, after optional whitespace; tools may open it too
        const trimmed = text.trimStart();
        if (trimmed.startsWith(THINK_OPEN)) {
          this.pending = trimmed.slice(THINK_OPEN.length);
          this.mode = "reasoning";
          return;
        }
        if (this.tools && (trimmed.startsWith("{") || trimmed.startsWith("[{") || trimmed.startsWith(PYTHON_TAG))) {
          this.mode = "tail"; // a bare JSON call takes the whole answer
          return;
        }
        if (!final && (trimmed === "" || THINK_OPEN.startsWith(trimmed) || (this.tools && PYTHON_TAG.startsWith(trimmed)))) return;
        this.mode = "content";
        return;
      }
      case "reasoning": {
        const end = text.indexOf(THINK_CLOSE);
        if (end >= 0) {
          out.reasoning += text.slice(0, end);
          // the answer proper starts after the blank lines that follow the block
          this.pending = text.slice(end + THINK_CLOSE.length);
          this.skipSpace = true;
          this.mode = "content";
          return;
        }
        const keep = final ? 0 : heldBack(text, [THINK_CLOSE]);
        out.reasoning += text.slice(0, text.length - keep);
        this.pending = text.slice(text.length - keep);
        return;
      }
      case "content": {
        if (this.skipSpace) {
          const rest = text.replace(/^\s+/, "");
          if (rest === "") {
            this.pending = "";
            return;
          }
          this.skipSpace = false;
          this.pending = rest;
          return;
        }
        if (this.tools) {
          const hermes = text.indexOf(HERMES_OPEN);
          const mistral = text.indexOf(MISTRAL_CALLS);
          if (hermes >= 0 && (mistral < 0 || hermes < mistral)) {
            out.content += text.slice(0, hermes);
            this.pending = text.slice(hermes + HERMES_OPEN.length);
            this.mode = "hermes";
            return;
          }
          if (mistral >= 0) {
            out.content += text.slice(0, mistral);
            this.pending = text.slice(mistral);
            this.mode = "tail";
            return;
          }
        }
        const keep = final || !this.tools ? 0 : heldBack(text, [HERMES_OPEN, MISTRAL_CALLS]);
        out.content += text.slice(0, text.length - keep);
        this.pending = text.slice(text.length - keep);
        return;
      }
      case "hermes": {
        const end = text.indexOf(HERMES_CLOSE);
        if (end < 0 && !final) return;
        const body = end >= 0 ? text.slice(0, end) : text;
        const call = this.parseCall(body);
        if (call) this.calls.push(call);
        else out.content += `${HERMES_OPEN}${body}${end >= 0 ? HERMES_CLOSE : ""}`;
        this.pending = end >= 0 ? text.slice(end + HERMES_CLOSE.length) : "";
        this.skipSpace = call !== undefined;
        this.mode = "content";
        return;
      }
      case "tail": {
        if (!final) return;
        const calls = this.parseTail(text.trim());
        if (calls) this.calls.push(...calls);
        else out.content += text;
        this.pending = "";
        this.mode = "content";
        return;
      }
    }
  }

  /** Mistral's `[TOOL_CALLS]…` or a Llama-3.1 bare JSON call (or a JSON array of them). */
  private parseTail(text: string): ParsedToolCall[] | undefined {
    let body = text;
    if (body.startsWith(PYTHON_TAG)) body = body.slice(PYTHON_TAG.length).trim();
    if (body.startsWith(MISTRAL_CALLS)) {
      body = body.slice(MISTRAL_CALLS.length).trim();
      // newer Mistral templates: name[ARGS]{json}, one call after another
      if (!body.startsWith("[") && body.includes("[ARGS]")) {
        const calls: ParsedToolCall[] = [];
        for (const part of body.split(MISTRAL_CALLS)) {
          const at = part.indexOf("[ARGS]");
          const call = at < 0 ? undefined : this.checked(part.slice(0, at).trim(), part.slice(at + "[ARGS]".length).trim());
          if (!call) return undefined;
          calls.push(call);
        }
        return calls;
      }
    }
    const parsed = parseJson(body);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    const calls = list.map((item) => this.fromObject(item));
    return calls.length > 0 && calls.every((c): c is ParsedToolCall => c !== undefined) ? calls : undefined;
  }

  private parseCall(body: string): ParsedToolCall | undefined {
    return this.fromObject(parseJson(body.trim()));
  }

  /** {name, arguments | parameters} naming an offered tool. */
  private fromObject(value: unknown): ParsedToolCall | undefined {
    if (typeof value !== "object" || value === null) return undefined;
    const record = value as Record<string, unknown>;
    const args = record.arguments ?? record.parameters ?? {};
    if (typeof record.name !== "string") return undefined;
    return this.checked(record.name, typeof args === "string" ? args : JSON.stringify(args));
  }

  private checked(name: string, args: string): ParsedToolCall | undefined {
    if (!this.tools?.has(name)) return undefined;
    const parsed = parseJson(args);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
    return { name, arguments: JSON.stringify(parsed) };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Characters at the end of `text` that could begin one of the markers, held back until they cannot. */
function heldBack(text: string, markers: readonly string[]): number {
  let keep = 0;
  for (const marker of markers) {
    for (let n = Math.min(marker.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(marker.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}
