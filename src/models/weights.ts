import { GgufFile } from "../gguf/reader.js";
import { Metadata } from "../gguf/metadata.js";
import { ggmlTypeName } from "../gguf/ggml-types.js";
import { isSupportedType } from "../quant/index.js";
import { Weight } from "../tensor/weight.js";
import { ModelError } from "./model.js";

/** Weights by GGUF name, with shape checks that name the tensor at fault. */
export class WeightSource {
  constructor(private readonly file: GgufFile) {}

  optional(name: string, dims?: readonly number[]): Weight | undefined {
    const info = this.file.tensor(name);
    if (!info) return undefined;
    if (!isSupportedType(info.type)) {
      throw new ModelError(`${name}: tensor type ${ggmlTypeName(info.type)} is not supported yet`);
    }
    if (dims && (dims.length !== info.dims.length || dims.some((d, i) => d !== info.dims[i]))) {
      throw new ModelError(`${name}: shape [${info.dims}] does not match the expected [${dims}]`);
    }
    const file = this.file;
    return new Weight(name, info.type, info.dims, { byteLength: info.byteSize, read: (offset, into) => file.readTensorRange(info, offset, into) });
  }

  /**
   * A stacked expert tensor [cols, rows, experts] (ffn_*_exps) as one weight per expert, each a view of
   * its own rows of the file.
   */
  requireExperts(name: string, dims: readonly [number, number, number]): Weight[] {
    const stacked = this.require(name, dims);
    const bytes = stacked.byteLength / dims[2];
    return Array.from({ length: dims[2] }, (_, e) => new Weight(`${name}[${e}]`, stacked.type, [dims[0], dims[1]], {
      byteLength: bytes,
      read: (offset, into) => stacked.read(e * bytes + offset, into),
    }));
  }

  require(name: string, dims?: readonly number[]): Weight {
    const weight = this.optional(name, dims);
    if (!weight) throw new ModelError(`missing tensor ${name}`);
    return weight;
  }
}

/** Hyper-parameters under the architecture's key prefix (`llama.block_count`, …). */
export class HyperParams {
  constructor(
    readonly metadata: Metadata,
    readonly arch: string,
  ) {}

  number(key: string): number | undefined {
    return this.metadata.number(`${this.arch}.${key}`);
  }

  require(key: string): number {
    const v = this.number(key);
    if (v === undefined) throw new ModelError(`missing metadata ${this.arch}.${key}`);
    if (!Number.isFinite(v) || v < 0) throw new ModelError(`${this.arch}.${key} has an invalid value ${v}`);
    return v;
  }

  /** A positive integer no larger than `max`: guards allocations sized by metadata. */
  count(key: string, max: number, fallback?: number): number {
    const v = this.number(key) ?? fallback;
    if (v === undefined) throw new ModelError(`missing metadata ${this.arch}.${key}`);
    if (!Number.isInteger(v) || v <= 0 || v > max) throw new ModelError(`${this.arch}.${key} = ${v} is out of range (1..${max})`);
    return v;
  }

  string(key: string): string | undefined {
    return this.metadata.string(`${this.arch}.${key}`);
  }
}
