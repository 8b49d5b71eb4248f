/**
 * Pre-tokenizer regexes by `tokenizer.ggml.pre`, as llama.cpp applies them: each expression in turn
 * splits every piece left by the previous one, keeping both the matches and the text between them.
 */
const CONTRACTIONS_CI = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const CJK = "[\\u4e00-\\u9fa5\\u0800-\\u4e00\\uac00-\\ud7ff]+";
// DeepSeek-LLM's letter class is the list of cased-letter (Lu/Ll/Lt) ranges, i.e. \p{LC}.
const DEEPSEEK_LLM_LETTERS = "\\p{LC}+";

const PATTERNS: Record<string, string[]> = {
  default: ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"],
  llama3: [LLAMA3],
  "deepseek-llm": ["[\\r\\n]", `\\s?${DEEPSEEK_LLM_LETTERS}`, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", CJK, "\\p{N}+"],
  "deepseek-coder": ["[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK, "\\p{N}"],
  falcon: ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"],
  starcoder: ["\\p{N}", GPT2],
  gpt2: [GPT2],
  qwen2: [QWEN2],
};

/** `tokenizer.ggml.pre` names, mapped to the pattern family llama.cpp uses for them. */
const PRE_ALIASES: Record<string, keyof typeof PATTERNS> = {
  default: "default",
  "llama3": "llama3",
  "llama-v3": "llama3",
  "llama-bpe": "llama3",
  "falcon3": "llama3",
  "pixtral": "llama3",
  "dbrx": "llama3",
  "smaug-bpe": "llama3",
  "deepseek-llm": "deepseek-llm",
  "deepseek-coder": "deepseek-coder",
  falcon: "falcon",
  starcoder: "starcoder",
  refact: "starcoder",
  "command-r": "starcoder",
  smollm: "starcoder",
  codeshell: "starcoder",
  exaone: "starcoder",
  "minerva-7b": "starcoder",
  "gpt-2": "gpt2",
  "phi-2": "gpt2",
  mpt: "gpt2",
  olmo: "gpt2",
  jais: "gpt2",
  "jina-es": "gpt2",
  "jina-de": "gpt2",
  "jina-v1-en": "gpt2",
  "jina-v2-es": "gpt2",
  "jina-v2-de": "gpt2",
  qwen2: "qwen2",
  "deepseek-r1-qwen": "qwen2",
  stablelm2: "qwen2",
  megrez: "qwen2",
};

/** Pre-tokenizers whose words that are whole tokens skip the merges (llama.cpp's ignore_merges). */
const IGNORE_MERGES = new Set(["llama3"]);

export interface PreTokenizer {
  name: string;
  regexes: RegExp[];
  ignoreMerges: boolean;
}

export function preTokenizerFor(pre: string): PreTokenizer | undefined {
  const family = PRE_ALIASES[pre];
  if (!family) return undefined;
  return {
    name: family,
    regexes: PATTERNS[family].map((source) => new RegExp(source, "gu")),
    ignoreMerges: IGNORE_MERGES.has(family),
  };
}

export function knownPreTokenizers(): string[] {
  return Object.keys(PRE_ALIASES);
}

/** Applies each regex in turn; unmatched stretches stay as pieces of their own. */
export function splitWithRegexes(text: string, regexes: RegExp[]): string[] {
  let pieces = [text];
  for (const regex of regexes) {
    const next: string[] = [];
    for (const piece of pieces) {
      let last = 0;
      regex.lastIndex = 0;
      for (const match of piece.matchAll(regex)) {
        const start = match.index ?? 0;
        if (match[0].length === 0) continue;
        if (start > last) next.push(piece.slice(last, start));
        next.push(match[0]);
        last = start + match[0].length;
      }
      if (last < piece.length) next.push(piece.slice(last));
    }
    pieces = next;
  }
  return pieces;
}
