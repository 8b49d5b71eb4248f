import { GgufError } from "../gguf/errors.js";
import { Metadata } from "../gguf/metadata.js";
import { encodeUtf8Lossless } from "../gguf/utf8.js";
import { unicodeToBytes } from "./byte-level.js";
import { encodeBpe } from "./bpe.js";
import { knownPreTokenizers, PreTokenizer, preTokenizerFor } from "./pre-tokenizers.js";
import { encodeSpm } from "./spm.js";
import { TokenType, Vocab } from "./vocab.js";
import { encodeWpm } from "./wpm.js";

export interface EncodeOptions {
  /** Add BOS/EOS as the model's metadata asks (llama.cpp's add_special). */
  addSpecial?: boolean;
  /** Recognise control tokens written as text, e.g. "<|im_end|>" (llama.cpp's parse_special). */
  parseSpecial?: boolean;
}

type Fragment = string | number;

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** Text ↔ token ids for one GGUF vocabulary, matching llama.cpp's llama_tokenize / token_to_piece. */
export class Tokenizer {
  private readonly pre?: PreTokenizer;

  constructor(readonly vocab: Vocab) {
    if (vocab.kind === "bpe") {
      this.pre = preTokenizerFor(vocab.preTokenizer);
      if (!this.pre) {
        throw new GgufError("bad-value", `pre-tokenizer '${vocab.preTokenizer}' is not supported (known: ${knownPreTokenizers().join(", ")})`, "tokenizer.ggml.pre");
      }
    }
  }

  static fromMetadata(meta: Metadata): Tokenizer {
    return new Tokenizer(Vocab.fromMetadata(meta));
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.encodeParts([{ text, parseSpecial: options.parseSpecial ?? false }], options.addSpecial ?? true);
  }

  /**
   * Encodes text assembled from trusted and untrusted parts (a rendered chat template and the user's
   * messages): control tokens are recognised only in parts that allow it, and the text between them is
   * tokenized as one piece, exactly as if the whole string had been encoded at once.
   */
  encodeParts(parts: { text: string; parseSpecial: boolean }[], addSpecial = true): number[] {
    const vocab = this.vocab;
    const fragments: Fragment[] = [];
    for (const part of parts) {
      if (!part.text) continue;
      for (const fragment of this.partition(part.text, part.parseSpecial)) {
        const last = fragments[fragments.length - 1];
        if (typeof fragment === "string" && typeof last === "string") fragments[fragments.length - 1] = last + fragment;
        else fragments.push(fragment);
      }
    }
    const output: number[] = [];
    const bos = vocab.specials.bos;
    if (addSpecial && vocab.addBos && bos !== undefined) output.push(bos);
    let previousWasSpecial = true;
    for (const fragment of fragments) {
      if (typeof fragment === "number") {
        output.push(fragment);
        previousWasSpecial = true;
        continue;
      }
      if (vocab.kind === "spm") {
        const prefixed = vocab.addSpacePrefix && previousWasSpecial ? ` ${fragment}` : fragment;
        encodeSpm(vocab, prefixed.replaceAll(" ", "\u2581"), output);
      } else if (vocab.kind === "bpe") {
        encodeBpe(vocab, this.pre as PreTokenizer, fragment, output);
      } else {
        encodeWpm(vocab, fragment, output);
      }
      previousWasSpecial = false;
    }
    const eos = vocab.kind === "wpm" ? vocab.specials.sep ?? vocab.specials.eos : vocab.specials.eos;
    if (addSpecial && vocab.addEos && eos !== undefined) output.push(eos);
    return output;
  }

  /** Splits out special tokens found verbatim in the text; user-defined ones always, control ones only when asked. */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = [text];
    for (const id of this.vocab.specialsByLength) {
      if (!parseSpecial && this.vocab.isControlLike(id)) continue;
      const piece = this.vocab.pieces[id];
      if (!piece) continue;
      const next: Fragment[] = [];
      for (const fragment of fragments) {
        if (typeof fragment === "number" || !fragment.includes(piece)) {
          next.push(fragment);
          continue;
        }
        const strips = this.vocab.stripsAfter.has(id);
        const parts = fragment.split(piece);
        parts.forEach((part, i) => {
          if (i > 0) next.push(id);
          // C's isspace set, as llama.cpp's partition strips it
          const text = i > 0 && strips ? part.replace(/^[ \t\n\v\f\r]+/, "") : part;
          if (text) next.push(text);
        });
      }
      fragments = next;
    }
    return fragments;
  }

  /** The bytes one token stands for. Control and unknown tokens are empty unless `special` is set. */
  tokenBytes(id: number, special = true): Uint8Array {
    const vocab = this.vocab;
    if (!(id >= 0 && id < vocab.size)) return new Uint8Array(0);
    const type = vocab.typeOf(id);
    const piece = vocab.pieces[id];
    if (type === TokenType.Control || type === TokenType.Unknown) return special ? encodeUtf8Lossless(piece) : new Uint8Array(0);
    if (type === TokenType.UserDefined) return encodeUtf8Lossless(piece);
    if (type === TokenType.Byte) {
      const match = BYTE_PIECE.exec(piece);
      return match ? Uint8Array.of(parseInt(match[1], 16)) : new Uint8Array(0);
    }
    if (vocab.kind === "bpe") return unicodeToBytes(piece);
    return encodeUtf8Lossless(piece.replaceAll("\u2581", " "));
  }

  /** Detokenizes a whole sequence (no leading-space removal), replacing invalid UTF-8 with U+FFFD. */
  decode(ids: ArrayLike<number>, special = false): string {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < ids.length; i++) parts.push(this.tokenBytes(ids[i], special));
    return new TextDecoder().decode(concatBytes(parts));
  }

  /** A token's text as llama.cpp's token_to_piece shows it (special tokens included). */
  piece(id: number): string {
    return new TextDecoder().decode(this.tokenBytes(id, true));
  }

  isEndOfGeneration(id: number): boolean {
    return this.vocab.endOfGeneration.has(id);
  }
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
