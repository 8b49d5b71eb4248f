/**
 * GPT-2's reversible byte ↔ unicode mapping: printable bytes map to themselves, the rest to
 * U+0100 and up, so that every byte string becomes a string of visible characters.
 */
function buildByteToChar(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : next++);
  return table;
}

export const BYTE_TO_CHAR = buildByteToChar();
export const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const encoder = new TextEncoder();

export function bytesToUnicode(text: string): string {
  let out = "";
  for (const b of encoder.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/** Inverse of bytesToUnicode; characters outside the map are kept as their own UTF-8. */
export function unicodeToBytes(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) out.push(b);
    else out.push(...encoder.encode(ch));
  }
  return Uint8Array.from(out);
}
