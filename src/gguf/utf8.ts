/**
 * GGUF strings are byte strings in practice: a few vocabularies hold tokens that are not valid UTF-8.
 * We keep them lossless the way Python's "surrogateescape" does: each byte that is not part of a valid
 * sequence becomes the lone surrogate U+DC80..U+DCFF, and encoding turns it back into that byte.
 */
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const plainEncoder = new TextEncoder();
const ESCAPE_BASE = 0xdc00;
const LONE_ESCAPE = /[\udc80-\udcff]/;

function sequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return 1;
  let length: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [length, min] = [2, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [length, min] = [3, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [length, min] = [4, 0x10000];
  else return 0;
  if (i + length > bytes.length) return 0;
  let cp = b0 & (0xff >> (length + 1));
  for (let k = 1; k < length; k++) {
    const b = bytes[i + k];
    if ((b & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return length;
}

export function decodeUtf8Lossless(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    let out = "";
    for (let i = 0; i < bytes.length; ) {
      const n = sequenceLength(bytes, i);
      if (n === 0) {
        out += String.fromCharCode(ESCAPE_BASE + bytes[i]);
        i += 1;
      } else {
        out += strict.decode(bytes.subarray(i, i + n));
        i += n;
      }
    }
    return out;
  }
}

export function encodeUtf8Lossless(text: string): Uint8Array {
  if (!LONE_ESCAPE.test(text)) return plainEncoder.encode(text);
  const parts: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff && !(i > 0 && isHighSurrogate(text.charCodeAt(i - 1)))) {
      parts.push(c - ESCAPE_BASE);
      continue;
    }
    const isPair = isHighSurrogate(c) && i + 1 < text.length;
    const chunk = isPair ? text.slice(i, i + 2) : text[i];
    if (isPair) i++;
    for (const b of plainEncoder.encode(chunk)) parts.push(b);
  }
  return Uint8Array.from(parts);
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
