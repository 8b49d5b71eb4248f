import { GgufError } from "./errors.js";
import { GgufArrayValue, GgufValue, GgufValueType } from "./types.js";

/** Typed, named access to GGUF metadata; a wrong type is an error naming the key. */
export class Metadata {
  constructor(readonly entries: Map<string, GgufValue>) {}

  has(key: string): boolean {
    return this.entries.has(key);
  }

  string(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.type !== GgufValueType.STRING) throw new GgufError("bad-value", "expected a string", key);
    return entry.value as string;
  }

  number(key: string): number | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const v = entry.value;
    if (typeof v === "number") return v;
    if (typeof v === "bigint") return Number(v);
    throw new GgufError("bad-value", "expected a number", key);
  }

  bool(key: string): boolean | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (typeof entry.value !== "boolean") throw new GgufError("bad-value", "expected a bool", key);
    return entry.value;
  }

  requireString(key: string): string {
    const v = this.string(key);
    if (v === undefined) throw new GgufError("bad-value", "required key is missing", key);
    return v;
  }

  array(key: string): GgufArrayValue | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.type !== GgufValueType.ARRAY) throw new GgufError("bad-value", "expected an array", key);
    return entry.value;
  }

  stringArray(key: string): string[] | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.type !== GgufValueType.ARRAY || entry.itemType !== GgufValueType.STRING) {
      throw new GgufError("bad-value", "expected an array of strings", key);
    }
    return entry.value as string[];
  }

  numberArray(key: string): ArrayLike<number> | undefined {
    const value = this.array(key);
    if (value === undefined) return undefined;
    if (ArrayBuffer.isView(value) && !(value instanceof BigInt64Array) && !(value instanceof BigUint64Array)) {
      return value as ArrayLike<number>;
    }
    throw new GgufError("bad-value", "expected an array of numbers", key);
  }
}
