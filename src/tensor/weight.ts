import { GgmlType, ggmlTypeName } from "../gguf/ggml-types.js";

/** Where a weight's bytes live: read on demand, so a backend can stream them where it keeps them. */
export interface WeightBytes {
  readonly byteLength: number;
  /** Fills `into` with bytes offset … offset + into.length. */
  read(offset: number, into: Uint8Array): void;
}

/**
 * A model weight: its GGUF name, ggml shape (dims[0] is the row length) and type. Only backends read
 * its bytes; model code sees names, shapes and types.
 */
export class Weight {
  private cached?: Uint8Array;
  private readonly source: WeightBytes;

  constructor(
    readonly name: string,
    readonly type: GgmlType,
    readonly dims: readonly number[],
    bytes: Uint8Array | WeightBytes,
  ) {
    if (bytes instanceof Uint8Array) {
      this.cached = bytes;
      this.source = { byteLength: bytes.length, read: (offset, into) => into.set(bytes.subarray(offset, offset + into.length)) };
    } else {
      this.source = bytes;
    }
  }

  /** Elements per row (the input width of a linear layer). */
  get cols(): number {
    return this.dims[0];
  }

  /** Number of rows (the output width of a linear layer). */
  get rows(): number {
    return this.dims.slice(1).reduce((a, b) => a * b, 1);
  }

  get typeName(): string {
    return ggmlTypeName(this.type);
  }

  get byteLength(): number {
    return this.source.byteLength;
  }

  /** Copies bytes offset … offset + into.length into `into` without keeping a copy here. */
  read(offset: number, into: Uint8Array): void {
    this.source.read(offset, into);
  }

  /**
   * @internal backend-only: all the bytes, read once on first use and then kept. Backends that keep
   * weights elsewhere use `read` instead, so the model is not held twice.
   */
  get data(): Uint8Array {
    if (!this.cached) {
      this.cached = new Uint8Array(this.byteLength);
      this.read(0, this.cached);
    }
    return this.cached;
  }
}
