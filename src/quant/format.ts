import { GgmlType } from "../gguf/ggml-types.js";

/**
 * One block type's traits, as ggml's type_traits table gives them. Bytes are always passed as a
 * Uint8Array plus an element-aligned byte offset; rows are contiguous runs of blocks.
 */
export interface QuantFormat {
  readonly type: GgmlType;
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
  /** The type activations are converted to before a dot product with this weight type. */
  readonly dotType: GgmlType;
  dequantizeRow(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, n: number): void;
  quantizeRow(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, n: number): void;
  /** Dot product of n elements: weights of this type · activations of `dotType`. */
  vecDot(n: number, w: Uint8Array, wOffset: number, a: Uint8Array, aOffset: number): number;
  /**
   * The same product in the order of the row-interleaved kernels (llama.cpp's repacked gemv/gemm):
   * each block's integer dot finished exactly, then acc = fma(Σq·y, d_w·d_a, acc) block after block.
   * Absent for types that have no interleaved kernel.
   */
  blockwiseDot?(n: number, w: Uint8Array, wOffset: number, a: Uint8Array, aOffset: number): number;
}

export function rowBytes(format: Pick<QuantFormat, "blockSize" | "typeSize">, n: number): number {
  return (n / format.blockSize) * format.typeSize;
}
