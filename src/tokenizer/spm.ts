import { Heap } from "./heap.js";
import { Vocab } from "./vocab.js";

interface Symbol {
  text: string;
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

const encoder = new TextEncoder();

/**
 * SentencePiece-style BPE as llama.cpp runs it: merge the adjacent pair whose joined piece has the
 * highest score; characters that are not tokens fall back to <0xXX> byte tokens.
 */
export function encodeSpm(vocab: Vocab, text: string, output: number[]): void {
  const symbols: Symbol[] = [];
  for (const ch of text) symbols.push({ text: ch, prev: symbols.length - 1, next: symbols.length + 1 });
  if (symbols.length === 0) return;
  symbols[symbols.length - 1].next = -1;

  const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
  const tryAddBigram = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const joined = symbols[left].text + symbols[right].text;
    const id = vocab.pieceToId.get(joined);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.score(id), size: joined.length });
  };
  for (let i = 1; i < symbols.length; i++) tryAddBigram(i - 1, i);

  for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
    const left = symbols[bigram.left];
    const right = symbols[bigram.right];
    if (left.text.length === 0 || right.text.length === 0 || left.text.length + right.text.length !== bigram.size) continue;
    left.text += right.text;
    right.text = "";
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    tryAddBigram(left.prev, bigram.left);
    tryAddBigram(bigram.left, left.next);
  }

  // Every merged symbol is a token by construction; a lone character that is not one falls back to bytes.
  for (let i = 0; i !== -1; i = symbols[i].next) {
    const id = vocab.pieceToId.get(symbols[i].text);
    if (id !== undefined) output.push(id);
    else for (const byte of encoder.encode(symbols[i].text)) output.push(byteToken(vocab, byte));
  }
}

export function byteToken(vocab: Vocab, byte: number): number {
  const hex = `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
  const id = vocab.pieceToId.get(hex) ?? vocab.pieceToId.get(String.fromCharCode(byte));
  if (id === undefined) throw new Error(`the vocabulary has no byte token for 0x${byte.toString(16)}`);
  return id;
}
