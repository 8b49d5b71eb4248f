import { Vocab } from "./vocab.js";

const PHANTOM_SPACE = "\u2581";
const WHITESPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;
const CONTROL = /^\p{C}$/u;
const NONSPACING_MARK = /^\p{Mn}$/u;
const PUNCTUATION = /^\p{P}$/u;
const SYMBOL = /^\p{S}$/u;

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function lowerCodePoint(ch: string): string {
  const lower = ch.toLowerCase();
  return Array.from(lower).length === 1 ? lower : ch;
}

/** BERT's basic tokenizer as llama.cpp does it: NFD, lowercase, split on spaces and punctuation. */
function splitWords(text: string): string[] {
  const words: string[] = [""];
  for (const ch of text.normalize("NFD")) {
    const cp = ch.codePointAt(0) as number;
    if (WHITESPACE.test(ch)) {
      if (words[words.length - 1]) words.push("");
      continue;
    }
    // Accents left over from NFD are dropped, as BERT's uncased tokenizer strips them.
    if (cp === 0 || cp === 0xfffd || CONTROL.test(ch) || NONSPACING_MARK.test(ch)) continue;
    const lower = lowerCodePoint(ch);
    if (PUNCTUATION.test(ch) || (cp < 0x7f && SYMBOL.test(ch)) || isChineseChar(cp)) {
      if (words[words.length - 1]) words.push("");
      words[words.length - 1] = lower;
      words.push("");
    } else {
      words[words.length - 1] += lower;
    }
  }
  if (!words[words.length - 1]) words.pop();
  return words;
}

/** WordPiece: greedy longest match from the left within each word; a word with no full cover is [UNK]. */
export function encodeWpm(vocab: Vocab, text: string, output: number[]): void {
  for (const word of splitWords(text)) {
    if (!word) continue;
    const chars = PHANTOM_SPACE + word;
    const start = output.length;
    for (let i = 0; i < chars.length; ) {
      let matched = false;
      for (let j = Math.min(chars.length, i + vocab.maxPieceLength + 1); j > i; j--) {
        const id = vocab.pieceToId.get(chars.slice(i, j));
        if (id !== undefined) {
          output.push(id);
          i = j;
          matched = true;
          break;
        }
      }
      if (!matched) {
        output.length = start;
        break;
      }
    }
    if (output.length === start && vocab.specials.unk !== undefined) output.push(vocab.specials.unk);
  }
}
