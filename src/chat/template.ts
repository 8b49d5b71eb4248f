import { Template } from "@huggingface/jinja";

/** A call the assistant made, as chat templates read it (arguments as an object). */
export interface ChatToolCall {
  id?: string;
  type: "function";
  function: { name: string; arguments: unknown };
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  tool_calls?: ChatToolCall[];
  /** The call a tool message answers. */
  tool_call_id?: string;
  name?: string;
}

export interface RenderOptions {
  bosToken?: string;
  eosToken?: string;
  addGenerationPrompt?: boolean;
  /** Tool definitions (OpenAI's shape), for templates that describe them to the model. */
  tools?: unknown[];
  /** More template variables, such as Qwen3's enable_thinking. */
  extra?: Record<string, unknown>;
}

/** Renders a conversation with the model's own `tokenizer.chat_template` (Jinja). */
export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string) {
    this.template = new Template(source);
  }

  render(messages: ChatMessage[], options: RenderOptions = {}): string {
    return this.template.render({
      ...options.extra,
      messages,
      bos_token: options.bosToken ?? "",
      eos_token: options.eosToken ?? "",
      add_generation_prompt: options.addGenerationPrompt ?? true,
      ...(options.tools ? { tools: options.tools } : {}),
    });
  }
}
