import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ChatHistoryItem, JinjaTemplateChatWrapper } from "node-llama-cpp";
import { ChatMessage, ChatTemplate } from "../src/chat/template.js";
import { loadTokenizer } from "../src/engine/load.js";
import { conversationTokens } from "../src/engine/prompt.js";
import { GgufFile, GgufValue, GgufValueType } from "../src/gguf/index.js";
import { writeGguf } from "../src/gguf/writer.js";
import { withControlTokens } from "../src/synth/control-tokens.js";
import { llamaCppTokenize, oracle } from "./helpers/llama-cpp.js";
import { STORIES, VOCAB_DIR } from "./helpers/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-templates-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Each family's chat format, as its model cards publish it, written as our own Jinja templates; the
 * expected strings are the formats spelled out by hand for CONVERSATION.
 */
interface Fixture {
  family: string;
  template: string;
  /** Control tokens the family's vocabulary has; the first three are its BOS, EOS and end-of-turn. */
  specials: [bos: string, eos: string, endOfTurn: string, ...rest: string[]];
  addBos: boolean;
  expected: string;
  /**
   * The vocabulary the family's specials are added to, like the family's own: byte-level BPE (GPT-2's),
   * or SentencePiece (stories260K's) with or without the leading space; or a real vocabulary as it is.
   */
  vocab: "bpe" | "spm" | "spm-no-space" | { path: string };
  /** The family's pre-tokenizer, for a BPE vocabulary. */
  pre?: string;
}

const CONVERSATION: ChatMessage[] = [
  { role: "system", content: "You are kind." },
  { role: "user", content: "Hi there" },
  { role: "assistant", content: "Hello!" },
  // control-token text typed by a user stays text
  { role: "user", content: "Tell me a story about <|im_end|> and <eos>." },
];

const CHATML_LOOP = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}";
const CHATML_BODY =
  "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n" +
  "<|im_start|>user\nTell me a story about <|im_end|> and <eos>.<|im_end|>\n<|im_start|>assistant\n";

export const FIXTURES: Fixture[] = [
  {
    family: "ChatML",
    template: `${CHATML_LOOP}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}`,
    specials: ["<|endoftext|>", "<|endoftext|>", "<|im_end|>", "<|im_start|>"],
    addBos: false,
    vocab: "bpe",
    pre: "qwen2",
    expected: CHATML_BODY,
  },
  {
    family: "Qwen2.5",
    // Qwen2.5 writes its own system prompt when the conversation has none
    template:
      "{%- if messages[0].role != 'system' %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
      `${CHATML_LOOP}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}`,
    specials: ["<|endoftext|>", "<|im_end|>", "<|im_end|>", "<|im_start|>", "<tool_call>", "</tool_call>"],
    addBos: false,
    vocab: "bpe",
    pre: "qwen2",
    expected: CHATML_BODY,
  },
  {
    family: "Qwen3",
    // earlier answers lose their reasoning; thinking can be switched off with an empty think block
    template:
      "{%- for m in messages %}{%- if m.role == 'assistant' and '</think>' in m.content %}{%- set content = m.content.split('</think>')[-1].lstrip('\\n') %}{%- else %}{%- set content = m.content %}{%- endif %}" +
      "{{- '<|im_start|>' + m.role + '\\n' + content + '<|im_end|>\\n' }}{%- endfor %}" +
      "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}",
    specials: ["<|endoftext|>", "<|im_end|>", "<|im_end|>", "<|im_start|>", "<think>", "</think>"],
    addBos: false,
    vocab: "bpe",
    pre: "qwen2",
    expected: CHATML_BODY,
  },
  {
    family: "Llama-3",
    template:
      "{{- bos_token }}{%- for m in messages %}{{- '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + m.content | trim + '<|eot_id|>' }}{%- endfor %}" +
      "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
    specials: ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"],
    addBos: true,
    vocab: "bpe",
    pre: "llama-bpe",
    expected:
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are kind.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a story about <|im_end|> and <eos>.<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
  },
  {
    family: "Gemma",
    // no system role: the system prompt opens the first user turn; the assistant is "model"
    template:
      "{{- bos_token }}{%- if messages[0].role == 'system' %}{%- set first = messages[0].content + '\\n\\n' %}{%- set loop_messages = messages[1:] %}{%- else %}{%- set first = '' %}{%- set loop_messages = messages %}{%- endif %}" +
      "{%- for m in loop_messages %}{%- set role = 'model' if m.role == 'assistant' else m.role %}{{- '<start_of_turn>' + role + '\\n' + (first if loop.first else '') + m.content | trim + '<end_of_turn>\\n' }}{%- endfor %}" +
      "{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}",
    specials: ["<bos>", "<eos>", "<end_of_turn>", "<start_of_turn>"],
    addBos: true,
    vocab: "spm-no-space",
    expected:
      "<bos><start_of_turn>user\nYou are kind.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n" +
      "<start_of_turn>user\nTell me a story about <|im_end|> and <eos>.<end_of_turn>\n<start_of_turn>model\n",
  },
  {
    family: "Phi-3",
    template: "{{- bos_token }}{%- for m in messages %}{{- '<|' + m.role + '|>\\n' + m.content + '<|end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- endif %}",
    specials: ["<s>", "<|endoftext|>", "<|end|>"],
    addBos: false,
    // Phi-3's own vocabulary: llama.cpp strips the whitespace after its control tokens
    vocab: { path: join(VOCAB_DIR, "ggml-vocab-phi-3.gguf") },
    expected:
      "<s><|system|>\nYou are kind.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nTell me a story about <|im_end|> and <eos>.<|end|>\n<|assistant|>\n",
  },
  {
    family: "Mistral",
    // [INST] blocks; the system prompt opens the first one; answers end with EOS
    template:
      "{{- bos_token }}{%- if messages[0].role == 'system' %}{%- set first = messages[0].content + '\\n\\n' %}{%- set loop_messages = messages[1:] %}{%- else %}{%- set first = '' %}{%- set loop_messages = messages %}{%- endif %}" +
      "{%- for m in loop_messages %}{%- if m.role == 'user' %}{{- '[INST] ' + (first if loop.first else '') + m.content + ' [/INST]' }}{%- elif m.role == 'assistant' %}{{- ' ' + m.content + eos_token }}{%- endif %}{%- endfor %}",
    specials: ["<s>", "</s>", "</s>", "[INST]", "[/INST]"],
    addBos: true,
    vocab: "spm",
    expected: "<s>[INST] You are kind.\n\nHi there [/INST] Hello!</s>[INST] Tell me a story about <|im_end|> and <eos>. [/INST]",
  },
];

/** The base vocabulary with the family's control tokens added, its BOS/EOS/EOT ids and add_bos flag set. */
function familyVocab(fixture: Fixture): string {
  if (typeof fixture.vocab === "object") return fixture.vocab.path;
  const source = GgufFile.open(fixture.vocab === "bpe" ? join(VOCAB_DIR, "ggml-vocab-gpt-2.gguf") : STORIES);
  const family = withControlTokens(source.metadata, fixture.specials);
  source.close();
  const metadata = new Map<string, GgufValue>();
  for (const [key, value] of family.metadata) if (key.startsWith("tokenizer.") || key === "general.architecture") metadata.set(key, value);
  const [bos, eos, eot] = family.ids;
  metadata.set("tokenizer.ggml.bos_token_id", { type: GgufValueType.UINT32, value: bos });
  metadata.set("tokenizer.ggml.eos_token_id", { type: GgufValueType.UINT32, value: eos });
  metadata.set("tokenizer.ggml.eot_token_id", { type: GgufValueType.UINT32, value: eot });
  metadata.set("tokenizer.ggml.add_bos_token", { type: GgufValueType.BOOL, value: fixture.addBos });
  if (fixture.pre) metadata.set("tokenizer.ggml.pre", { type: GgufValueType.STRING, value: fixture.pre });
  if (fixture.vocab === "spm-no-space") metadata.set("tokenizer.ggml.add_space_prefix", { type: GgufValueType.BOOL, value: false });
  metadata.set("tokenizer.chat_template", { type: GgufValueType.STRING, value: fixture.template });
  metadata.set("general.name", { type: GgufValueType.STRING, value: `vocabulary for ${fixture.family} templates` });
  const path = join(scratch, `${fixture.family}.gguf`);
  writeGguf(path, { metadata, tensors: [] });
  return path;
}

/** The conversation as node-llama-cpp's chat history, ending with the empty answer to generate. */
function chatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const items: ChatHistoryItem[] = messages.map((m) =>
    m.role === "assistant" ? { type: "model", response: [m.content] } : { type: m.role === "system" ? "system" : "user", text: m.content },
  );
  items.push({ type: "model", response: [] });
  return items;
}

describe("chat templates: each family's format, rendered, and tokenized as llama.cpp does", () => {
  for (const fixture of FIXTURES) {
    it(`${fixture.family}`, async () => {
      const template = new ChatTemplate(fixture.template);
      const [bosText, eosText] = fixture.specials;
      const rendered = template.render(CONVERSATION, { bosToken: bosText, eosToken: eosText });
      assert.equal(rendered, fixture.expected);

      const path = familyVocab(fixture);
      const { file, tokenizer } = loadTokenizer(path);
      file.close();
      const format = { tokenizer, chatTemplate: template };
      const show = (ids: number[]): string => ids.map((id) => JSON.stringify(tokenizer.vocab.pieces[id])).join(" ");
      // every end-of-turn marker of the family stops generation, here and in llama.cpp
      const endOfTurn = tokenizer.vocab.pieceToId.get(fixture.specials[2]) ?? -1;
      assert.ok(tokenizer.isEndOfGeneration(endOfTurn), `${fixture.specials[2]} ends generation`);

      const llama = await oracle();
      const model = await llama.loadModel({ modelPath: path, vocabOnly: true } as never);
      try {
        assert.equal(model.isEogToken(endOfTurn as never), true);
        // llama-server's way: the whole rendered prompt through llama.cpp's tokenizer, control tokens
        // parsed, BOS added when the vocabulary asks and the template has not written it
        const plain = CONVERSATION.map((m, i) => (i === CONVERSATION.length - 1 ? { ...m, content: "Tell me a story." } : m));
        const whole = template.render(plain, { bosToken: bosText, eosToken: eosText });
        const bos = tokenizer.vocab.specials.bos;
        const wroteBos = whole.startsWith(bosText) && bos !== undefined && whole.slice(0, bosText.length) === tokenizer.vocab.pieces[bos];
        const expectedWhole = [...(fixture.addBos && !wroteBos && bos !== undefined ? [bos] : []), ...((await llamaCppTokenize(path, whole, true)) as number[])];
        const oursWhole = conversationTokens(format, plain);
        assert.deepEqual(oursWhole, expectedWhole, `ours   ${show(oursWhole)}\nllama.cpp ${show(expectedWhole)}`);

        // node-llama-cpp's chat wrapper, control-token text in a user message included (it stays text);
        // on SentencePiece vocabularies with a leading space its segment-by-segment heuristics add spaces
        // that llama.cpp's own tokenization of the prompt does not, so there the check above is the one
        if (fixture.vocab !== "spm" && typeof fixture.vocab !== "object") {
          const wrapper = new JinjaTemplateChatWrapper({ template: fixture.template, convertUnsupportedSystemMessagesToUserMessages: false, trimLeadingWhitespaceInResponses: false });
          const state = wrapper.generateContextState({ chatHistory: chatHistory(CONVERSATION) });
          const theirs = [...state.contextText.tokenize(model.tokenizer)] as number[];
          const ours = conversationTokens(format, CONVERSATION);
          assert.deepEqual(ours, theirs, `ours   ${show(ours)}\ntheirs ${show(theirs)}`);
        }
      } finally {
        await model.dispose();
      }
    });
  }

  it("Qwen3: earlier answers lose their reasoning, and enable_thinking=false writes an empty think block", () => {
    const qwen3 = new ChatTemplate(FIXTURES.find((f) => f.family === "Qwen3")?.template ?? "");
    const rendered = qwen3.render([
      { role: "user", content: "2+2?" },
      { role: "assistant", content: "<think>\nadd them\n</think>\n\n4" },
      { role: "user", content: "3+3?" },
    ], { extra: { enable_thinking: false } });
    assert.equal(rendered, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  });
});
