import { Tokenizer } from "./tokenizer.js";

/**
 * Turns a stream of token ids into text without ever splitting a UTF-8 character: bytes of an
 * unfinished character are held back until the token that completes it arrives.
 */
export class StreamDecoder {
  private pending = new Uint8Array(0);
  private readonly decoder = new TextDecoder("utf-8");

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly special = false,
  ) {}

  push(id: number): string {
    const bytes = this.tokenizer.tokenBytes(id, this.special);
    const joined = new Uint8Array(this.pending.length + bytes.length);
    joined.set(this.pending);
    joined.set(bytes, this.pending.length);
    const complete = completePrefixLength(joined);
    this.pending = joined.slice(complete);
    return this.decoder.decode(joined.subarray(0, complete));
  }

  /** Whatever is still held back, with invalid bytes replaced. */
  flush(): string {
    const rest = this.decoder.decode(this.pending);
    this.pending = new Uint8Array(0);
    return rest;
  }
}

/** Length of the longest prefix that does not end inside an incomplete (but still possible) UTF-8 sequence. */
function completePrefixLength(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
