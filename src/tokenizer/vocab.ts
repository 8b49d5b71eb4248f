import { GgufError } from "../gguf/errors.js";
import { Metadata } from "../gguf/metadata.js";
import { MergeRanks } from "./merge-ranks.js";

/** tokenizer.ggml.token_type values. */
export enum TokenType {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

export type VocabKind = "spm" | "bpe" | "wpm";

export interface SpecialTokens {
  bos?: number;
  eos?: number;
  unk?: number;
  sep?: number;
  pad?: number;
  eot?: number;
}

const MODEL_KINDS: Record<string, VocabKind> = { llama: "spm", gpt2: "bpe", bert: "wpm" };

/** Control tokens that end a turn in common chat formats; llama.cpp stops on them as it does on EOS. */
const END_OF_TURN_PIECES = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "<|end_of_text|>",
  "<end_of_utterance>",
]);

/** The vocabulary of a GGUF file: pieces, scores, types, merges and the special-token settings. */
export class Vocab {
  readonly pieceToId = new Map<string, number>();
  /** BPE merge ranks (empty for other kinds of vocabulary). */
  readonly mergeRanks: MergeRanks;
  readonly specials: SpecialTokens;
  /** Ids of control, user-defined and unknown tokens, longest text first (llama.cpp's partition order). */
  readonly specialsByLength: number[];
  readonly endOfGeneration: Set<number>;
  readonly maxPieceLength: number;
  /** Special tokens that swallow the whitespace after them when parsed from text (llama.cpp's RSTRIP). */
  readonly stripsAfter = new Set<number>();

  private constructor(
    readonly kind: VocabKind,
    readonly pieces: string[],
    readonly scores: ArrayLike<number> | undefined,
    readonly types: ArrayLike<number> | undefined,
    merges: string[] | undefined,
    readonly preTokenizer: string,
    specials: SpecialTokens,
    readonly addBos: boolean,
    readonly addEos: boolean,
    readonly addSpacePrefix: boolean,
    /** llama.cpp gives this model Phi-3's token attributes (see phi3Attributes). */
    phi3Attributes = false,
  ) {
    pieces.forEach((piece, id) => {
      if (!this.pieceToId.has(piece)) this.pieceToId.set(piece, id);
    });
    this.mergeRanks = new MergeRanks(merges ?? [], this.pieceToId);
    this.maxPieceLength = pieces.reduce((max, p) => Math.max(max, p.length), 0);
    this.specials = specials;
    this.specialsByLength = pieces
      .map((_, id) => id)
      .filter((id) => {
        const type = this.typeOf(id);
        return type === TokenType.Control || type === TokenType.UserDefined || type === TokenType.Unknown;
      })
      .sort((a, b) => pieces[b].length - pieces[a].length || a - b);
    this.endOfGeneration = new Set([specials.eos, specials.eot].filter((id): id is number => id !== undefined));
    for (const id of this.specialsByLength) {
      if (this.typeOf(id) === TokenType.Control && END_OF_TURN_PIECES.has(pieces[id])) this.endOfGeneration.add(id);
    }
    if (phi3Attributes) {
      // every special token and "</s>" strip what follows them, except "<unk>", "<s>" and "<|endoftext|>"
      for (const id of this.specialsByLength) this.stripsAfter.add(id);
      const eos = this.pieceToId.get("</s>");
      if (eos !== undefined) this.stripsAfter.add(eos);
      for (const piece of ["<unk>", "<s>", "<|endoftext|>"]) this.stripsAfter.delete(this.pieceToId.get(piece) ?? -1);
    }
  }

  static fromMetadata(meta: Metadata): Vocab {
    const model = meta.requireString("tokenizer.ggml.model");
    const kind = MODEL_KINDS[model];
    if (!kind) throw new GgufError("bad-value", `tokenizer model '${model}' is not supported (llama, gpt2, bert are)`, "tokenizer.ggml.model");
    const pieces = meta.stringArray("tokenizer.ggml.tokens");
    if (!pieces || pieces.length === 0) throw new GgufError("bad-value", "no tokens", "tokenizer.ggml.tokens");
    const scores = meta.numberArray("tokenizer.ggml.scores");
    const types = meta.numberArray("tokenizer.ggml.token_type");
    for (const [key, arr] of [["tokenizer.ggml.scores", scores], ["tokenizer.ggml.token_type", types]] as const) {
      if (arr && arr.length !== pieces.length) throw new GgufError("bad-value", `has ${arr.length} entries for ${pieces.length} tokens`, key);
    }
    const merges = meta.stringArray("tokenizer.ggml.merges");
    if (kind === "bpe" && !merges) throw new GgufError("bad-value", "a BPE vocabulary needs merges", "tokenizer.ggml.merges");
    const id = (key: string): number | undefined => {
      const v = meta.number(`tokenizer.ggml.${key}`);
      return v !== undefined && v >= 0 && v < pieces.length ? v : undefined;
    };
    const specials: SpecialTokens = {
      bos: id("bos_token_id"),
      eos: id("eos_token_id"),
      unk: id("unknown_token_id"),
      sep: id("seperator_token_id"),
      pad: id("padding_token_id"),
      eot: id("eot_token_id"),
    };
    // llama.cpp's defaults per tokenizer model, overridden by the file's own keys.
    const defaults = { spm: [true, false, true], bpe: [false, false, false], wpm: [true, true, false] }[kind];
    const addBos = meta.bool("tokenizer.ggml.add_bos_token") ?? defaults[0];
    const addEos = meta.bool("tokenizer.ggml.add_eos_token") ?? defaults[1];
    const addSpacePrefix = meta.bool("tokenizer.ggml.add_space_prefix") ?? defaults[2];
    const pre = meta.string("tokenizer.ggml.pre") ?? "default";
    return new Vocab(kind, pieces, scores, types, merges, pre, specials, addBos, addEos, addSpacePrefix, phi3Attributes(meta));
  }

  get size(): number {
    return this.pieces.length;
  }

  typeOf(id: number): TokenType {
    return this.types ? (this.types[id] as TokenType) : TokenType.Normal;
  }

  score(id: number): number {
    return this.scores ? this.scores[id] : 0;
  }

  isControlLike(id: number): boolean {
    const type = this.typeOf(id);
    return type === TokenType.Control || type === TokenType.Unknown;
  }
}

/**
 * llama.cpp gives some models' special tokens attributes the GGUF does not carry: a model whose name
 * says "phi-3" or "phi3" gets Phi-3's (whitespace after its special tokens is stripped).
 */
function phi3Attributes(meta: Metadata): boolean {
  const name = (meta.string("general.name") ?? "").toLowerCase();
  return name.includes("phi-3") || name.includes("phi3");
}
