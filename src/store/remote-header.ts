import { GgufError } from "../gguf/errors.js";
import { readGgufHeader } from "../gguf/reader.js";
import { ByteSource } from "../gguf/source.js";
import { GgufHeader } from "../gguf/types.js";
import { StoreError } from "./errors.js";
import { describeHttpFailure, Hub, hubFetch, resolveUrl } from "./hub.js";

/** The start of a remote file: reads past it ask for more rather than fail. */
class PrefixSource implements ByteSource {
  constructor(
    private readonly prefix: Uint8Array,
    readonly size: number,
  ) {}

  readInto(position: number, into: Uint8Array): void {
    const end = position + into.length;
    if (end > this.prefix.length && this.prefix.length < this.size) throw new NeedMoreBytes(end);
    if (end > this.size) throw new GgufError("truncated", `unexpected end of file at byte ${this.size}`);
    into.set(this.prefix.subarray(position, end));
  }

  close(): void {}
}

class NeedMoreBytes extends Error {
  constructor(readonly end: number) {
    super(`needs bytes up to ${end}`);
  }
}

const FIRST_READ = 2 ** 20;
const MAX_HEADER = 256 * 2 ** 20;

async function fetchPrefix(hub: Hub, url: string, length: number, what: string): Promise<{ bytes: Uint8Array; size: number }> {
  const response = await hubFetch(hub, url, { headers: { range: `bytes=0-${length - 1}` } });
  if (!response.ok) throw new StoreError(describeHttpFailure(response.status, what));
  const total = /\/(\d+)$/.exec(response.headers.get("content-range") ?? "")?.[1] ?? response.headers.get("content-length");
  if (!response.body) throw new StoreError(`${what}: empty answer`);
  // a server that ignores Range sends the whole file: read what is needed and hang up
  const chunks: Uint8Array[] = [];
  let received = 0;
  const reader = response.body.getReader();
  while (received < length) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
  }
  await reader.cancel().catch(() => undefined);
  const bytes = new Uint8Array(Math.min(received, length));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, Math.min(chunk.length, bytes.length - at));
    bytes.set(part, at);
    at += part.length;
  }
  return { bytes, size: total === undefined || total === null ? bytes.length : Number(total) };
}

/** A hub file's GGUF header, read with Range requests of growing size; the tensor data is never fetched. */
export async function readRemoteHeader(hub: Hub, repo: string, revision: string, path: string): Promise<GgufHeader> {
  const url = resolveUrl(hub, repo, revision, path);
  let length = FIRST_READ;
  for (;;) {
    const { bytes, size } = await fetchPrefix(hub, url, length, `${repo}/${path}`);
    try {
      return readGgufHeader(new PrefixSource(bytes, size));
    } catch (error) {
      if (!(error instanceof NeedMoreBytes)) throw error;
      if (error.end > MAX_HEADER) throw new StoreError(`${repo}/${path}: the GGUF header is larger than ${MAX_HEADER} bytes`);
      length = Math.max(length * 2, error.end + FIRST_READ);
    }
  }
}
