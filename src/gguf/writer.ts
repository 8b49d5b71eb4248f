import { closeSync, openSync, writeSync } from "node:fs";
import { encodeUtf8Lossless } from "./utf8.js";
import { GgufError } from "./errors.js";
import { blockGeometry, ggmlTypeName } from "./ggml-types.js";
import { alignUp, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValue, GgufValueType } from "./types.js";

export interface TensorToWrite {
  name: string;
  dims: number[];
  type: number;
  /** The tensor's bytes, produced when it is written so that large models never sit in memory whole. */
  data: () => Uint8Array;
}

export interface GgufToWrite {
  version?: 2 | 3;
  metadata: Map<string, GgufValue>;
  tensors: TensorToWrite[];
}



/** Accumulates little-endian header bytes. */
class ByteWriter {
  private chunks: Uint8Array[] = [];
  length = 0;

  push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  private scalar(size: number, set: (v: DataView) => void): void {
    const b = new Uint8Array(size);
    set(new DataView(b.buffer));
    this.push(b);
  }
  u32(v: number): void { this.scalar(4, (d) => d.setUint32(0, v, true)); }
  u64(v: number | bigint): void { this.scalar(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  string(s: string): void {
    const b = encodeUtf8Lossless(s);
    this.u64(b.length);
    this.push(b);
  }
  value(type: GgufValueType, v: unknown): void {
    switch (type) {
      case GgufValueType.UINT8: return this.scalar(1, (d) => d.setUint8(0, v as number));
      case GgufValueType.INT8: return this.scalar(1, (d) => d.setInt8(0, v as number));
      case GgufValueType.BOOL: return this.scalar(1, (d) => d.setUint8(0, v ? 1 : 0));
      case GgufValueType.UINT16: return this.scalar(2, (d) => d.setUint16(0, v as number, true));
      case GgufValueType.INT16: return this.scalar(2, (d) => d.setInt16(0, v as number, true));
      case GgufValueType.UINT32: return this.scalar(4, (d) => d.setUint32(0, v as number, true));
      case GgufValueType.INT32: return this.scalar(4, (d) => d.setInt32(0, v as number, true));
      case GgufValueType.FLOAT32: return this.scalar(4, (d) => d.setFloat32(0, v as number, true));
      case GgufValueType.UINT64: return this.scalar(8, (d) => d.setBigUint64(0, BigInt(v as bigint), true));
      case GgufValueType.INT64: return this.scalar(8, (d) => d.setBigInt64(0, BigInt(v as bigint), true));
      case GgufValueType.FLOAT64: return this.scalar(8, (d) => d.setFloat64(0, v as number, true));
      case GgufValueType.STRING: return this.string(v as string);
    }
    throw new GgufError("bad-type", `cannot write value type ${type}`);
  }
  entry(key: string, entry: GgufValue): void {
    this.string(key);
    this.u32(entry.type);
    if (entry.type !== GgufValueType.ARRAY) return this.value(entry.type, entry.value);
    this.u32(entry.itemType);
    const items = entry.value as ArrayLike<unknown>;
    this.u64(items.length);
    if (ArrayBuffer.isView(items)) {
      const view = items as unknown as ArrayBufferView;
      this.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice());
      return;
    }
    for (let i = 0; i < items.length; i++) this.value(entry.itemType, items[i]);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function tensorByteSize(t: Omit<TensorToWrite, "data">): number {
  const g = blockGeometry(t.type);
  if (!g) throw new GgufError("bad-type", `unknown tensor type ${t.type}`, t.name);
  const elements = t.dims.reduce((a, b) => a * b, 1);
  if (t.dims[0] % g.blockSize !== 0) throw new GgufError("bad-tensor", `row length not a multiple of ${ggmlTypeName(t.type)} blocks`, t.name);
  return (elements / g.blockSize) * g.typeSize;
}

export interface EncodedHeader {
  /** Magic, version, counts, metadata and tensor infos. */
  bytes: Uint8Array;
  alignment: number;
  /** Absolute file offset of the data section. */
  dataOffset: number;
  /** Each tensor's byte size, in order. */
  sizes: number[];
}

/** Lays out a GGUF file: tensors are packed in order, each padded to the alignment. */
export function encodeGgufHeader(file: Omit<GgufToWrite, "tensors"> & { tensors: Omit<TensorToWrite, "data">[] }): EncodedHeader {
  const alignmentEntry = file.metadata.get("general.alignment");
  const alignment = alignmentEntry ? Number(alignmentEntry.value) : GGUF_DEFAULT_ALIGNMENT;
  const header = new ByteWriter();
  header.u32(GGUF_MAGIC);
  header.u32(file.version ?? 3);
  header.u64(file.tensors.length);
  header.u64(file.metadata.size);
  for (const [key, entry] of file.metadata) header.entry(key, entry);
  let offset = 0;
  const sizes = file.tensors.map(tensorByteSize);
  file.tensors.forEach((t, i) => {
    header.string(t.name);
    header.u32(t.dims.length);
    for (const d of t.dims) header.u64(d);
    header.u32(t.type);
    header.u64(offset);
    offset = alignUp(offset + sizes[i], alignment);
  });
  const bytes = header.concat();
  return { bytes, alignment, dataOffset: alignUp(bytes.length, alignment), sizes };
}

/** Writes a GGUF file: header, metadata, tensor infos, then each tensor padded to the alignment. */
export function writeGguf(path: string, file: GgufToWrite): void {
  const { bytes, alignment, dataOffset, sizes } = encodeGgufHeader(file);
  const fd = openSync(path, "w");
  try {
    writeSync(fd, bytes);
    if (file.tensors.length === 0) return;
    writeSync(fd, new Uint8Array(dataOffset - bytes.length));
    file.tensors.forEach((t, i) => {
      const data = t.data();
      if (data.length !== sizes[i]) throw new GgufError("bad-tensor", `has ${data.length} bytes, expected ${sizes[i]}`, t.name);
      writeSync(fd, data);
      writeSync(fd, new Uint8Array(alignUp(data.length, alignment) - data.length));
    });
  } finally {
    closeSync(fd);
  }
}
