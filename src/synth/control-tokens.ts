import { GgufValue, GgufValueType } from "../gguf/types.js";

/** tokenizer.ggml.token_type's value for control tokens. */
const CONTROL = 3;
/** … and for ordinary ones, what a vocabulary without types has throughout. */
const NORMAL = 1;

/**
 * A vocabulary's metadata with `pieces` as control tokens: pieces it has already are re-typed as
 * control, the others are appended (score 0 where the vocabulary has scores). Returns the new metadata
 * and each piece's id, in order.
 */
export function withControlTokens(metadata: ReadonlyMap<string, GgufValue>, pieces: readonly string[]): { metadata: Map<string, GgufValue>; ids: number[] } {
  const out = new Map(metadata);
  const tokens = [...(metadata.get("tokenizer.ggml.tokens")?.value as string[])];
  const scoreValue = metadata.get("tokenizer.ggml.scores")?.value as ArrayLike<number> | undefined;
  const scores = scoreValue ? Array.from(scoreValue) : undefined;
  const typeValue = metadata.get("tokenizer.ggml.token_type")?.value as ArrayLike<number> | undefined;
  const types = typeValue ? Array.from(typeValue) : tokens.map(() => NORMAL);
  const idOf = new Map<string, number>();
  tokens.forEach((piece, id) => {
    if (!idOf.has(piece)) idOf.set(piece, id);
  });
  const ids = pieces.map((piece) => {
    let id = idOf.get(piece);
    if (id === undefined) {
      id = tokens.push(piece) - 1;
      scores?.push(0);
      types.push(CONTROL);
      idOf.set(piece, id);
    }
    types[id] = CONTROL;
    return id;
  });
  const array = (itemType: GgufValueType, value: unknown[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType, value }) as GgufValue;
  out.set("tokenizer.ggml.tokens", array(GgufValueType.STRING, tokens));
  out.set("tokenizer.ggml.token_type", array(GgufValueType.INT32, types));
  if (scores) out.set("tokenizer.ggml.scores", array(GgufValueType.FLOAT32, scores));
  return { metadata: out, ids };
}
