/** Typed views over byte buffers; callers keep offsets aligned to the element size. */
export function floatView(bytes: Uint8Array, offset: number, n: number): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset + offset, n);
}

export function halfView(bytes: Uint8Array, offset: number, n: number): Uint16Array {
  return new Uint16Array(bytes.buffer, bytes.byteOffset + offset, n);
}

export function int8(b: number): number {
  return (b << 24) >> 24;
}
