import { ChatMessage, ChatTemplate, RenderOptions } from "../chat/template.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";

/** What turning a conversation into tokens needs of a model: its tokenizer and its chat template. */
export interface ChatFormat {
  tokenizer: Tokenizer;
  chatTemplate?: ChatTemplate;
}

/**
 * A conversation as prompt tokens: through the model's chat template, with BOS as the metadata says
 * (never doubled). Message contents are rendered as placeholders first, so that control-token text typed
 * by the user stays plain text while the template's own markers become control tokens. A model without
 * a template continues its text: the messages are simply joined.
 */
export function conversationTokens(loaded: ChatFormat, messages: readonly ChatMessage[], raw = false, options: Pick<RenderOptions, "tools" | "extra"> = {}): number[] {
  const { tokenizer, chatTemplate } = loaded;
  if (raw || !chatTemplate) {
    return tokenizer.encode(messages.map((m) => m.content).join(""), { addSpecial: true, parseSpecial: false });
  }
  const placeholder = (i: number): string => `\u0000tsllm-message-${i}\u0000`;
  const { bos, eos } = tokenizer.vocab.specials;
  const bosText = bos !== undefined ? tokenizer.vocab.pieces[bos] : "";
  const rendered = chatTemplate.render(
    messages.map((m, i) => ({ ...m, content: placeholder(i) })),
    { ...options, bosToken: bosText, eosToken: eos !== undefined ? tokenizer.vocab.pieces[eos] : "" },
  );
  const parts: { text: string; parseSpecial: boolean }[] = [];
  let rest = rendered;
  messages.forEach((message, i) => {
    const [before, after] = rest.split(placeholder(i));
    if (after === undefined) throw new Error("the chat template did not render every message");
    parts.push({ text: before, parseSpecial: true }, { text: message.content, parseSpecial: false });
    rest = after;
  });
  parts.push({ text: rest, parseSpecial: true });
  const templateWroteBos = bosText !== "" && rendered.startsWith(bosText);
  return tokenizer.encodeParts(parts, !templateWroteBos);
}

/** One user prompt (with an optional system prompt) as tokens; raw prompts skip the template. */
export function promptTokens(loaded: ChatFormat, prompt: string, raw: boolean, system?: string): number[] {
  if (raw || !loaded.chatTemplate) return conversationTokens(loaded, [{ role: "user", content: prompt }], true);
  const messages: ChatMessage[] = system ? [{ role: "system", content: system }] : [];
  messages.push({ role: "user", content: prompt });
  return conversationTokens(loaded, messages);
}

/** Whether the prompt ends inside an opened reasoning block (a template whose generation prompt writes "<think>"). */
export function opensReasoning(tokenizer: Tokenizer, prompt: readonly number[]): boolean {
  return tokenizer.decode(prompt.slice(-16), true).trimEnd().endsWith("<think>");
}
