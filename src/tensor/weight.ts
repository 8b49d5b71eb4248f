import { GgmlType, ggmlTypeName } from "../gguf/ggml-types.js";

/**
 * A model weight: its GGUF name, ggml shape (dims[0] is the row length) and type. The bytes are
 * held here but only backends read them; model code sees names, shapes and types.
 */
export class Weight {
  constructor(
    readonly name: string,
    readonly type: GgmlType,
    readonly dims: readonly number[],
    /** @internal backend-only storage */
    readonly data: Uint8Array,
  ) {}

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
}
