import { GgufError } from "./errors.js";
import { decodeUtf8Lossless } from "./utf8.js";
import { blockGeometry, ggmlTypeName } from "./ggml-types.js";
import { ByteSource, FileSource, MemorySource } from "./source.js";
import {
  alignUp,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgufArrayValue,
  GgufHeader,
  GgufTensorInfo,
  GgufValue,
  GgufValueType,
} from "./types.js";

/** Bounds that a crafted file cannot push us past. Counts are also bounded by the bytes left in the file. */
export const GGUF_LIMITS = {
  maxStringBytes: 16 * 1024 * 1024,
  maxArrayLength: 1 << 26,
  maxKeyValues: 1 << 16,
  maxTensors: 1 << 20,
  maxTensorNameBytes: 256,
  maxDims: 4,
  maxAlignment: 1 << 16,
} as const;

const SCALAR_SIZES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/** Sequential little-endian cursor over a ByteSource, reading in windows. */
class Cursor {
  private window = new Uint8Array(0);
  private view = new DataView(this.window.buffer);
  private windowStart = 0;
  position = 0;

  constructor(private readonly source: ByteSource) {}

  get remaining(): number {
    return this.source.size - this.position;
  }

  private need(n: number, what: string): number {
    if (n > this.remaining) {
      throw new GgufError("truncated", `file ends inside ${what} (needs ${n} bytes at ${this.position}, ${this.remaining} left)`);
    }
    const rel = this.position - this.windowStart;
    if (rel >= 0 && rel + n <= this.window.length) return rel;
    const size = Math.min(Math.max(n, 1 << 20), this.remaining);
    this.window = new Uint8Array(size);
    this.view = new DataView(this.window.buffer);
    this.source.readInto(this.position, this.window);
    this.windowStart = this.position;
    return 0;
  }

  u8(what: string): number {
    const at = this.need(1, what);
    this.position += 1;
    return this.window[at];
  }
  u32(what: string): number {
    const at = this.need(4, what);
    this.position += 4;
    return this.view.getUint32(at, true);
  }
  u64(what: string): bigint {
    const at = this.need(8, what);
    this.position += 8;
    return this.view.getBigUint64(at, true);
  }
  bytes(n: number, what: string): Uint8Array {
    const at = this.need(n, what);
    this.position += n;
    return this.window.slice(at, at + n);
  }
  /** A u64 count that must fit `limit` and the bytes left in the file at `minBytesEach` per item. */
  count(what: string, limit: number, minBytesEach: number): number {
    const raw = this.u64(what);
    if (raw > BigInt(limit)) throw new GgufError("limit", `count ${raw} exceeds the limit of ${limit}`, what);
    const n = Number(raw);
    if (n * minBytesEach > this.remaining) {
      throw new GgufError("truncated", `count ${n} needs more bytes than the file has left`, what);
    }
    return n;
  }
  string(what: string, limit: number = GGUF_LIMITS.maxStringBytes): string {
    const length = this.count(what, limit, 1);
    return decodeUtf8Lossless(this.bytes(length, what));
  }
}



function readScalar(cursor: Cursor, type: GgufValueType, what: string): number | bigint | boolean | string {
  const size = SCALAR_SIZES[type];
  if (type === GgufValueType.STRING) return cursor.string(what);
  if (size === undefined) throw new GgufError("bad-type", `unknown value type ${type}`, what);
  const bytes = cursor.bytes(size, what);
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  switch (type) {
    case GgufValueType.UINT8: return view.getUint8(0);
    case GgufValueType.INT8: return view.getInt8(0);
    case GgufValueType.BOOL: {
      const b = view.getUint8(0);
      if (b > 1) throw new GgufError("bad-value", `bool must be 0 or 1, got ${b}`, what);
      return b === 1;
    }
    case GgufValueType.UINT16: return view.getUint16(0, true);
    case GgufValueType.INT16: return view.getInt16(0, true);
    case GgufValueType.UINT32: return view.getUint32(0, true);
    case GgufValueType.INT32: return view.getInt32(0, true);
    case GgufValueType.FLOAT32: return view.getFloat32(0, true);
    case GgufValueType.UINT64: return view.getBigUint64(0, true);
    case GgufValueType.INT64: return view.getBigInt64(0, true);
    case GgufValueType.FLOAT64: return view.getFloat64(0, true);
  }
  throw new GgufError("bad-type", `unknown value type ${type}`, what);
}

function readArray(cursor: Cursor, what: string): GgufValue {
  const itemType = cursor.u32(what) as GgufValueType;
  if (itemType === GgufValueType.ARRAY) throw new GgufError("bad-type", "nested arrays are not supported", what);
  if (itemType === GgufValueType.STRING) {
    const length = cursor.count(what, GGUF_LIMITS.maxArrayLength, 8);
    const items: string[] = new Array(length);
    for (let i = 0; i < length; i++) items[i] = cursor.string(`${what}[${i}]`);
    return { type: GgufValueType.ARRAY, itemType, value: items };
  }
  const size = SCALAR_SIZES[itemType];
  if (size === undefined) throw new GgufError("bad-type", `unknown array item type ${itemType}`, what);
  const length = cursor.count(what, GGUF_LIMITS.maxArrayLength, size);
  const raw = cursor.bytes(length * size, what);
  return { type: GgufValueType.ARRAY, itemType, value: typedArrayFromBytes(itemType, raw, length, what) };
}

function typedArrayFromBytes(type: GgufValueType, raw: Uint8Array, length: number, what: string): GgufArrayValue {
  // `raw` is a fresh copy with offset 0, so typed views are aligned (GGUF is little-endian, as is every host we run on).
  const buf = raw.buffer;
  switch (type) {
    case GgufValueType.UINT8: return new Uint8Array(buf, 0, length);
    case GgufValueType.INT8: return new Int8Array(buf, 0, length);
    case GgufValueType.UINT16: return new Uint16Array(buf, 0, length);
    case GgufValueType.INT16: return new Int16Array(buf, 0, length);
    case GgufValueType.UINT32: return new Uint32Array(buf, 0, length);
    case GgufValueType.INT32: return new Int32Array(buf, 0, length);
    case GgufValueType.FLOAT32: return new Float32Array(buf, 0, length);
    case GgufValueType.FLOAT64: return new Float64Array(buf, 0, length);
    case GgufValueType.UINT64: return new BigUint64Array(buf, 0, length);
    case GgufValueType.INT64: return new BigInt64Array(buf, 0, length);
    case GgufValueType.BOOL: {
      const out: boolean[] = new Array(length);
      for (let i = 0; i < length; i++) {
        if (raw[i] > 1) throw new GgufError("bad-value", `bool must be 0 or 1, got ${raw[i]}`, `${what}[${i}]`);
        out[i] = raw[i] === 1;
      }
      return out;
    }
  }
  throw new GgufError("bad-type", `unknown array item type ${type}`, what);
}

function readValue(cursor: Cursor, key: string): GgufValue {
  const type = cursor.u32(key) as GgufValueType;
  if (type === GgufValueType.ARRAY) return readArray(cursor, key);
  if (!(type in GgufValueType)) throw new GgufError("bad-type", `unknown value type ${type}`, key);
  return { type, value: readScalar(cursor, type, key) } as GgufValue;
}

function readTensorInfo(cursor: Cursor, index: number): GgufTensorInfo {
  const name = cursor.string(`tensor #${index} name`, GGUF_LIMITS.maxTensorNameBytes);
  const nDims = cursor.u32(name);
  if (nDims < 1 || nDims > GGUF_LIMITS.maxDims) {
    throw new GgufError("bad-tensor", `has ${nDims} dimensions (1 to ${GGUF_LIMITS.maxDims} allowed)`, name);
  }
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < nDims; d++) {
    const raw = cursor.u64(name);
    if (raw > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError("bad-tensor", `dimension ${d} is too large (${raw})`, name);
    const dim = Number(raw);
    elements *= dim;
    if (elements > Number.MAX_SAFE_INTEGER) throw new GgufError("bad-tensor", "element count overflows", name);
    dims.push(dim);
  }
  const type = cursor.u32(name);
  const geometry = blockGeometry(type);
  if (!geometry) throw new GgufError("bad-type", `unknown tensor type ${type}`, name);
  if (dims[0] % geometry.blockSize !== 0) {
    throw new GgufError("bad-tensor", `row length ${dims[0]} is not a multiple of ${ggmlTypeName(type)}'s block size ${geometry.blockSize}`, name);
  }
  const offsetRaw = cursor.u64(name);
  if (offsetRaw > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError("bad-tensor", `offset ${offsetRaw} is out of range`, name);
  const byteSize = (elements / geometry.blockSize) * geometry.typeSize;
  return { name, dims, type, offset: Number(offsetRaw), byteSize };
}

function readAlignment(metadata: Map<string, GgufValue>): number {
  const entry = metadata.get("general.alignment");
  if (!entry) return GGUF_DEFAULT_ALIGNMENT;
  const value = entry.value;
  if (entry.type !== GgufValueType.UINT32 || typeof value !== "number" || value === 0 || (value & (value - 1)) !== 0 || value > GGUF_LIMITS.maxAlignment) {
    throw new GgufError("bad-value", "must be a u32 power of two", "general.alignment");
  }
  return value;
}

function checkTensorLayout(tensors: GgufTensorInfo[], alignment: number, dataOffset: number, fileSize: number): void {
  const available = fileSize - dataOffset;
  for (const t of tensors) {
    if (t.offset % alignment !== 0) throw new GgufError("bad-tensor", `offset ${t.offset} is not aligned to ${alignment}`, t.name);
    if (t.offset + t.byteSize > available) {
      throw new GgufError("bad-tensor", `data [${t.offset}, ${t.offset + t.byteSize}) runs past the end of the file`, t.name);
    }
  }
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (prev.offset + prev.byteSize > sorted[i].offset) {
      throw new GgufError("bad-tensor", `data overlaps tensor ${prev.name}`, sorted[i].name);
    }
  }
}

export function readGgufHeader(source: ByteSource): GgufHeader {
  const cursor = new Cursor(source);
  if (source.size < 8) throw new GgufError("not-gguf", "file too small to be GGUF");
  const magic = cursor.u32("magic");
  if (magic !== GGUF_MAGIC) throw new GgufError("not-gguf", "not a GGUF file (bad magic)");
  const version = cursor.u32("version");
  if (version === 1) {
    throw new GgufError("unsupported-version", "GGUF version 1 is no longer supported; re-convert the model with a current llama.cpp");
  }
  if (version !== 2 && version !== 3) throw new GgufError("unsupported-version", `unsupported GGUF version ${version}`);
  const tensorCount = cursor.count("tensor count", GGUF_LIMITS.maxTensors, 24);
  const kvCount = cursor.count("metadata count", GGUF_LIMITS.maxKeyValues, 12);

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = cursor.string(`metadata key #${i}`, 65536);
    if (metadata.has(key)) throw new GgufError("bad-value", "duplicate key", key);
    metadata.set(key, readValue(cursor, key));
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const info = readTensorInfo(cursor, i);
    if (names.has(info.name)) throw new GgufError("bad-tensor", "duplicate tensor name", info.name);
    names.add(info.name);
    tensors.push(info);
  }

  const alignment = readAlignment(metadata);
  const dataOffset = alignUp(cursor.position, alignment);
  checkTensorLayout(tensors, alignment, dataOffset, source.size);
  return { version, metadata, tensors, alignment, dataOffset, fileSize: source.size };
}

/** llama.cpp's name for part `index` (0-based) of a split model: PREFIX-00001-of-00003.gguf. */
export function splitPartPath(prefix: string, index: number, count: number): string {
  const pad = (n: number): string => String(n).padStart(5, "0");
  return `${prefix}-${pad(index + 1)}-of-${pad(count)}.gguf`;
}

const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;
const MAX_SPLIT_PARTS = 1000;

/** The prefix of a split part's file name, when it follows llama.cpp's naming. */
export function splitPrefix(path: string): string | undefined {
  return SPLIT_NAME.exec(path)?.[1];
}

interface GgufPart {
  header: GgufHeader;
  source: ByteSource;
}

function splitNumber(header: GgufHeader, key: string): number | undefined {
  const value = header.metadata.get(key);
  if (value === undefined) return undefined;
  if (typeof value.value !== "number" || !Number.isInteger(value.value)) throw new GgufError("bad-value", "expected an integer", key);
  return value.value;
}

/** How many parts a file says its model has (llama.cpp's gguf-split keys), 1 when it is whole. */
function splitCount(header: GgufHeader): number {
  const count = splitNumber(header, "split.count") ?? 1;
  if (count < 1 || count > MAX_SPLIT_PARTS) throw new GgufError("bad-value", `${count} parts is out of range`, "split.count");
  return count;
}

/**
 * An open GGUF model: the header in memory, tensor data read on demand by offset. A model split by
 * gguf-split is one GgufFile over all its parts; the first part's metadata is the model's.
 */
export class GgufFile {
  private readonly tensorList: GgufTensorInfo[];
  private readonly byName = new Map<string, GgufTensorInfo>();
  private readonly partOf = new Map<GgufTensorInfo, GgufPart>();

  private constructor(private readonly parts: GgufPart[]) {
    this.tensorList = parts.flatMap((part) => part.header.tensors);
    for (const part of parts) {
      for (const info of part.header.tensors) {
        if (this.byName.has(info.name)) throw new GgufError("bad-tensor", "appears in more than one part", info.name);
        this.byName.set(info.name, info);
        this.partOf.set(info, part);
      }
    }
  }

  /** Opens a file; the first part of a split model opens its sibling parts by llama.cpp's naming. */
  static open(path: string): GgufFile {
    const first = openPart(path);
    let count: number;
    try {
      count = splitCount(first.header);
      if (count > 1 && (splitNumber(first.header, "split.no") ?? 0) !== 0) {
        throw new GgufError("bad-value", `${path} is part ${(splitNumber(first.header, "split.no") ?? 0) + 1} of ${count}; open the first part`, "split.no");
      }
    } catch (error) {
      first.source.close();
      throw error;
    }
    if (count === 1) return new GgufFile([first]);
    const prefix = splitPrefix(path);
    if (prefix === undefined) {
      first.source.close();
      throw new GgufError("bad-value", `the model has ${count} parts but ${path} is not named PREFIX-00001-of-${String(count).padStart(5, "0")}.gguf`, "split.count");
    }
    return GgufFile.assemble(first, Array.from({ length: count - 1 }, (_, i) => splitPartPath(prefix, i + 1, count)));
  }

  /** Opens the parts of one model from explicit paths, in order (content-addressed blobs have no telling names). */
  static openParts(paths: readonly string[]): GgufFile {
    if (paths.length === 0) throw new GgufError("io", "no files given");
    return GgufFile.assemble(openPart(paths[0]), paths.slice(1));
  }

  private static assemble(first: GgufPart, restPaths: readonly string[]): GgufFile {
    const parts = [first];
    try {
      const count = splitCount(first.header);
      if (count !== restPaths.length + 1) {
        throw new GgufError("bad-value", `the model has ${count} parts, ${restPaths.length + 1} given`, "split.count");
      }
      for (const path of restPaths) {
        const part = openPart(path);
        parts.push(part);
        const no = splitNumber(part.header, "split.no");
        if (no !== parts.length - 1 || splitCount(part.header) !== count) {
          throw new GgufError("bad-value", `${path} is not part ${parts.length} of ${count}`, "split.no");
        }
      }
      const declared = splitNumber(first.header, "split.tensors.count");
      const file = new GgufFile(parts);
      if (declared !== undefined && declared !== file.tensorList.length) {
        throw new GgufError("bad-value", `says ${declared} tensors, the parts hold ${file.tensorList.length}`, "split.tensors.count");
      }
      return file;
    } catch (error) {
      for (const part of parts) part.source.close();
      throw error;
    }
  }

  static fromBytes(bytes: Uint8Array): GgufFile {
    const source = new MemorySource(bytes);
    return new GgufFile([{ header: readGgufHeader(source), source }]);
  }

  /** The first part's header (the whole file's, for a model in one file). */
  get header(): GgufHeader {
    return this.parts[0].header;
  }

  get partCount(): number {
    return this.parts.length;
  }

  /** Bytes on disk over all parts. */
  get totalSize(): number {
    return this.parts.reduce((sum, part) => sum + part.header.fileSize, 0);
  }

  get metadata(): Map<string, GgufValue> {
    return this.header.metadata;
  }

  get tensors(): GgufTensorInfo[] {
    return this.tensorList;
  }

  tensor(name: string): GgufTensorInfo | undefined {
    return this.byName.get(name);
  }

  /** Reads one tensor's bytes into a fresh buffer (or into `into` when given). */
  readTensorData(info: GgufTensorInfo, into?: Uint8Array): Uint8Array {
    const target = into ?? new Uint8Array(info.byteSize);
    if (target.length !== info.byteSize) throw new GgufError("bad-tensor", "destination size mismatch", info.name);
    this.readTensorRange(info, 0, target);
    return target;
  }

  /** Bytes offset … offset + into.length of a tensor's data, read into `into` (any view, a WebAssembly memory's too). */
  readTensorRange(info: GgufTensorInfo, offset: number, into: Uint8Array): void {
    if (offset < 0 || offset + into.length > info.byteSize) throw new GgufError("bad-tensor", "read past the tensor's data", info.name);
    const part = this.partOf.get(info);
    if (!part) throw new GgufError("bad-tensor", "is not a tensor of this file", info.name);
    part.source.readInto(part.header.dataOffset + info.offset + offset, into);
  }

  close(): void {
    for (const part of this.parts) part.source.close();
  }
}

function openPart(path: string): GgufPart {
  const source = new FileSource(path);
  try {
    return { header: readGgufHeader(source), source };
  } catch (error) {
    source.close();
    throw error;
  }
}
