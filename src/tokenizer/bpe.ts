import { bytesToUnicode } from "./byte-level.js";
import { Heap } from "./heap.js";
import { PreTokenizer, splitWithRegexes } from "./pre-tokenizers.js";
import { Vocab } from "./vocab.js";

const utf8 = new TextEncoder();

interface Bigram {
  left: number;
  right: number;
  text: string;
  rank: number;
}

/** Byte-level BPE (GPT-2 style): pre-tokenize, map bytes to characters, merge by rank. */
export function encodeBpe(vocab: Vocab, pre: PreTokenizer, text: string, output: number[]): void {
  for (const piece of splitWithRegexes(text, pre.regexes)) {
    const word = bytesToUnicode(piece);
    if (pre.ignoreMerges) {
      const whole = vocab.pieceToId.get(word);
      if (whole !== undefined) {
        output.push(whole);
        continue;
      }
    }
    for (const symbol of mergeWord(vocab, word)) {
      const id = vocab.pieceToId.get(symbol);
      if (id !== undefined) {
        output.push(id);
        continue;
      }
      // llama.cpp's fallback: look each UTF-8 byte of the symbol up as a one-byte piece.
      // A lone byte ≥ 0x80 is not valid UTF-8; GGUF strings keep such bytes as U+DC80..U+DCFF.
      for (const byte of utf8.encode(symbol)) {
        const byteId = vocab.pieceToId.get(String.fromCharCode(byte < 0x80 ? byte : 0xdc00 + byte));
        if (byteId !== undefined) output.push(byteId);
      }
    }
  }
}

function mergeWord(vocab: Vocab, word: string): string[] {
  const text = Array.from(word);
  const prev = text.map((_, i) => i - 1);
  const next = text.map((_, i) => (i + 1 < text.length ? i + 1 : -1));
  const queue = new Heap<Bigram>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
  const addBigram = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const rank = vocab.mergeRanks.rank(text[left], text[right]);
    if (rank === undefined) return;
    queue.push({ left, right, text: text[left] + text[right], rank });
  };
  for (let i = 1; i < text.length; i++) addBigram(i - 1, i);
  for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
    const { left, right } = bigram;
    if (text[left] === "" || text[right] === "" || text[left] + text[right] !== bigram.text) continue;
    text[left] += text[right];
    text[right] = "";
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    addBigram(prev[left], left);
    addBigram(left, next[left]);
  }
  return text.filter((t) => t !== "");
}
