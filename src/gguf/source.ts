import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { GgufError } from "./errors.js";

/** Positional byte access, so that files larger than a JS buffer are read piece by piece. */
export interface ByteSource {
  readonly size: number;
  /** Fills `into` from absolute position `position`; throws on short read. */
  readInto(position: number, into: Uint8Array): void;
  close(): void;
}

export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number | null;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, "r");
      this.size = fstatSync(this.fd).size;
    } catch (error) {
      throw new GgufError("io", describeIoError(error), path);
    }
  }

  readInto(position: number, into: Uint8Array): void {
    if (this.fd === null) throw new GgufError("io", "file already closed", this.path);
    let done = 0;
    while (done < into.length) {
      const n = readSync(this.fd, into, done, into.length - done, position + done);
      if (n === 0) throw new GgufError("truncated", `unexpected end of file at byte ${position + done}`);
      done += n;
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export class MemorySource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}

  get size(): number {
    return this.bytes.length;
  }

  readInto(position: number, into: Uint8Array): void {
    if (position + into.length > this.bytes.length) {
      throw new GgufError("truncated", `unexpected end of data at byte ${this.bytes.length}`);
    }
    into.set(this.bytes.subarray(position, position + into.length));
  }

  close(): void {}
}

function describeIoError(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "is a directory, not a GGUF file";
  if (code === "EACCES") return "permission denied";
  return error instanceof Error ? error.message : String(error);
}
