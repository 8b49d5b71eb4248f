import { availableParallelism } from "node:os";
import { GgmlType } from "../../gguf/ggml-types.js";
import { quantFormat, rowBytes } from "../../quant/index.js";
import { Weight } from "../../tensor/weight.js";
import { AttentionShape, HalfStorage, LayerKv } from "../backend.js";
import { ScalarBackend } from "../scalar/scalar-backend.js";
import { KernelInstance, KernelName, kernelsUseRelaxedSimd, RepackName } from "./kernels.js";
import { ThreadPool } from "./thread-pool.js";

/** Types whose kernels need prepareBias's lanes (the shift is log2 of the level that means zero). */
const BIAS_SHIFT: Partial<Record<GgmlType, number>> = { [GgmlType.Q4_0]: 3, [GgmlType.Q5_0]: 4 };

const KERNELS: Partial<Record<GgmlType, KernelName>> = {
  [GgmlType.Q8_0]: "matvec_q8_0",
  [GgmlType.Q4_0]: "matvec_q4_0",
  [GgmlType.Q5_0]: "matvec_q5_0",
  [GgmlType.Q4_1]: "matvec_q4_1",
  [GgmlType.Q5_1]: "matvec_q5_1",
  [GgmlType.Q2_K]: "matvec_q2_k",
  [GgmlType.Q3_K]: "matvec_q3_k",
  [GgmlType.Q4_K]: "matvec_q4_k",
  [GgmlType.Q5_K]: "matvec_q5_k",
  [GgmlType.Q6_K]: "matvec_q6_k",
};

/** Types with a four-row interleaved layout: their repack routine, block size in it, and gemm kernel. */
interface InterleavedKernel {
  repack: RepackName;
  /** Elements a block and bytes a block for four rows, in the interleaved layout. */
  blockSize: number;
  groupBytesPerBlock: number;
  /** Activations as Q8_0 planes (32 quants, a widened f32 scale and an i32 sum: 40 bytes a block), or as standard Q8_K rows. */
  activations: "q8_0-planes" | "q8_k";
  gemm: KernelName;
}
const INTERLEAVED: Partial<Record<GgmlType, InterleavedKernel>> = {
  [GgmlType.Q4_0]: { repack: "repack_q4_0x4", blockSize: 32, groupBytesPerBlock: 80, activations: "q8_0-planes", gemm: "gemm_q4_0x4" },
  [GgmlType.Q8_0]: { repack: "repack_q8_0x4", blockSize: 32, groupBytesPerBlock: 144, activations: "q8_0-planes", gemm: "gemm_q8_0x4" },
  [GgmlType.Q4_K]: { repack: "repack_q4_kx4", blockSize: 256, groupBytesPerBlock: 640, activations: "q8_k", gemm: "gemm_q4_kx4" },
  [GgmlType.Q6_K]: { repack: "repack_q6_kx4", blockSize: 256, groupBytesPerBlock: 1104, activations: "q8_k", gemm: "gemm_q6_kx4" },
};
/** Bytes a 32-element block of activations takes in the Q8_0 planes. */
const Q8_0_PLANE_BYTES = 40;
/** i32 words of attend_range's parameter block (kernels/attention.ts). */
const ATTENTION_PARAMS = 15;
/** Bytes of standard rows staged at a time while repacking. */
const REPACK_CHUNK = 1 << 20;

/**
 * The scalar backend with its hot loop, quantized matrix × vector, moved into WebAssembly SIMD on worker
 * threads for the types that have kernels; every other operation and type still runs on the scalar
 * twin. Results are bit-identical to the scalar backend whatever the thread count.
 */
export class WasmBackend extends ScalarBackend {
  override readonly name: string = "wasm";
  private readonly instance = new KernelInstance();
  private readonly pool: ThreadPool;
  private readonly resident = new WeakMap<Weight, number>();
  private scratch = { at: 0, size: 0 };

  constructor(threads = availableParallelism()) {
    super();
    this.pool = new ThreadPool(this.instance, Math.max(1, Math.floor(threads)));
  }

  get threads(): number {
    return this.pool.threads;
  }

  override matmul(w: Weight, x: Float32Array, tokens: number): Float32Array {
    const interleaved = INTERLEAVED[w.type];
    if (interleaved && w.rows % 4 === 0) return this.interleavedMatmul(w, interleaved, x, tokens);
    const kernel = KERNELS[w.type];
    if (!kernel) return super.matmul(w, x, tokens);
    const format = quantFormat(w.type);
    const activation = quantFormat(format.dotType);
    const cols = w.cols;
    const rows = w.rows;
    const aRow = rowBytes(activation, cols);
    const weights = this.residentCopy(w);
    // activations, then (Q4_0, Q5_0) 32 bytes of bias lanes a block, then the output row, then the f32 input row
    const activations = this.scratchSpace(aRow + 16 + (cols / 32) * 32 + rows * 4 + cols * 4 + 16);
    const biasShift = BIAS_SHIFT[w.type];
    const outAt = Math.ceil((activations + aRow) / 16) * 16 + (biasShift !== undefined ? (cols / 32) * 32 : 0);
    const inputAt = outAt + Math.ceil(rows / 4) * 16;
    const quantizeInWasm =
      format.dotType === GgmlType.Q8_0 ? this.instance.quantizeQ8_0 : format.dotType === GgmlType.Q8_K ? this.instance.quantizeQ8_K : undefined;
    const out = new Float32Array(tokens * rows);
    for (let t = 0; t < tokens; t++) {
      if (quantizeInWasm) {
        new Float32Array(this.instance.heap.buffer).set(x.subarray(t * cols, (t + 1) * cols), inputAt / 4);
        quantizeInWasm(inputAt, activations, cols);
      } else {
        activation.quantizeRow(x, t * cols, this.instance.heap, activations, cols);
      }
      if (biasShift !== undefined) this.instance.prepareBias(activations, cols, biasShift);
      this.pool.run({ kernel, units: rows, work: rows * cols, weights, activations, n: cols, out: outAt, tokens: 1, outStride: rows });
      out.set(new Float32Array(this.instance.heap.buffer, outAt, rows), t * rows);
    }
    return out;
  }

  /** Every token in one call: activations quantized to Q8_0 planes or Q8_K rows, weights repacked four rows at a time. */
  private interleavedMatmul(w: Weight, kernel: InterleavedKernel, x: Float32Array, tokens: number): Float32Array {
    const { cols, rows } = w;
    const weights = this.repackedCopy(w, kernel);
    const inputBytes = tokens * cols * 4;
    const planeBytes = tokens * (kernel.activations === "q8_k" ? rowBytes(quantFormat(GgmlType.Q8_K), cols) : (cols / 32) * Q8_0_PLANE_BYTES);
    const at = this.scratchSpace(inputBytes + planeBytes + tokens * rows * 4 + 32);
    const actsAt = at + inputBytes;
    const outAt = Math.ceil((actsAt + planeBytes) / 16) * 16;
    new Float32Array(this.instance.heap.buffer).set(x.subarray(0, tokens * cols), at / 4);
    if (kernel.activations === "q8_k") this.instance.quantizeQ8_K(at, actsAt, cols * tokens);
    else this.instance.quantizeQ8_0Planes(at, actsAt, cols, tokens);
    this.pool.run({ kernel: kernel.gemm, units: rows / 4, work: rows * cols * tokens, weights, activations: actsAt, n: cols, out: outAt, tokens, outStride: rows });
    return new Float32Array(this.instance.heap.buffer).slice(outAt / 4, outAt / 4 + tokens * rows);
  }

  /** Mean empty dispatch round trip to the worker threads, in microseconds. */
  measureDispatch(): number {
    return this.pool.measureDispatch();
  }

  private readonly residentHalves = new WeakSet<Uint16Array>();

  /** KV caches live in the kernels' memory (a shared memory never moves, so the views stay valid). */
  readonly halfStorage: HalfStorage = {
    allocate: (length) => {
      const at = this.instance.reuse(length * 2) ?? this.instance.allocate(length * 2);
      const array = new Uint16Array(this.instance.memory.buffer, at, length);
      this.residentHalves.add(array);
      return array;
    },
    release: (array) => {
      this.residentHalves.delete(array);
      this.instance.release(array.byteOffset, array.byteLength);
    },
  };

  override attention(q: Float32Array, kv: LayerKv, positions: ArrayLike<number>, shape: AttentionShape): Float32Array {
    const { heads, kvHeads, headDim, scale } = shape;
    const tokens = positions.length;
    const resident = this.residentHalves.has(kv.keys) && this.residentHalves.has(kv.values);
    if (!kernelsUseRelaxedSimd() || !resident || headDim % 4 !== 0) return super.attention(q, kv, positions, shape);
    let last = 0;
    for (let t = 0; t < tokens; t++) last = Math.max(last, positions[t]);
    const cells = Math.ceil((last + 1) / 32) * 32;
    // Per thread: K and V of one head widened to f32, the scores, 32 accumulator rows and q through F16.
    const partBytes = (2 * cells * headDim + cells + 33 * headDim) * 4;
    const qBytes = q.length * 4;
    const at = this.scratchSpace(ATTENTION_PARAMS * 4 + tokens * 4 + 2 * qBytes + this.threads * partBytes + 64);
    const positionsAt = at + ATTENTION_PARAMS * 4;
    const qAt = Math.ceil((positionsAt + tokens * 4) / 16) * 16;
    const outAt = qAt + qBytes;
    const workAt = outAt + qBytes;
    // Enough chunks of query tokens that every thread gets several units.
    const chunk = Math.max(1, Math.min(16, Math.ceil((tokens * kvHeads) / (8 * this.threads))));
    const params = new Int32Array(this.instance.memory.buffer, at, ATTENTION_PARAMS);
    params.set([qAt, kv.keys.byteOffset, kv.values.byteOffset, outAt, workAt, partBytes, positionsAt, tokens, heads, kvHeads, headDim, 0, tokens > 1 && headDim % 8 === 0 ? 1 : 0, chunk, cells]);
    new Float32Array(this.instance.memory.buffer, at + 11 * 4, 1)[0] = scale;
    new Int32Array(this.instance.memory.buffer, positionsAt, tokens).set(positions);
    const heap = new Float32Array(this.instance.heap.buffer);
    heap.set(q, qAt / 4);
    const units = kvHeads * Math.ceil(tokens / chunk);
    this.pool.run({ kernel: "attend_range", units, work: tokens * heads * cells * headDim * 2, weights: at, activations: 0, n: 0, out: 0, tokens, outStride: 0 });
    return heap.slice(outAt / 4, (outAt + qBytes) / 4);
  }

  /** silu(gate)·up in SIMD where the kernels have the fused multiply-add ggml's exp needs. */
  override swiglu(gate: Float32Array, up: Float32Array): Float32Array {
    if (!kernelsUseRelaxedSimd() || gate.length % 4 !== 0) return super.swiglu(gate, up);
    const bytes = gate.length * 4;
    const at = this.scratchSpace(3 * bytes);
    const heap = new Float32Array(this.instance.heap.buffer);
    heap.set(gate, at / 4);
    heap.set(up, (at + bytes) / 4);
    this.instance.siluMul(at, at + bytes, at + 2 * bytes, gate.length);
    return heap.slice((at + 2 * bytes) / 4, (at + 3 * bytes) / 4);
  }

  dispose(): void {
    this.pool.dispose();
  }

  private residentCopy(w: Weight): number {
    let at = this.resident.get(w);
    if (at === undefined) {
      at = this.instance.allocate(w.data.length);
      this.instance.heap.set(w.data, at);
      this.resident.set(w, at);
    }
    return at;
  }

  /** The weight in its interleaved layout, repacked once through a staging area of the scratch space. */
  private repackedCopy(w: Weight, kernel: InterleavedKernel): number {
    let at = this.resident.get(w);
    if (at !== undefined) return at;
    const stride = w.data.length / w.rows;
    const groupBytes = (w.cols / kernel.blockSize) * kernel.groupBytesPerBlock;
    at = this.instance.allocate((w.rows / 4) * groupBytes);
    const chunkRows = Math.max(4, Math.floor(REPACK_CHUNK / stride / 4) * 4);
    for (let row = 0; row < w.rows; row += chunkRows) {
      const count = Math.min(chunkRows, w.rows - row);
      const staging = this.scratchSpace(count * stride);
      this.instance.heap.set(w.data.subarray(row * stride, (row + count) * stride), staging);
      this.instance.repacks[kernel.repack](staging, at + (row / 4) * groupBytes, count, w.cols);
    }
    this.resident.set(w, at);
    return at;
  }

  private scratchSpace(size: number): number {
    const needed = size + 16;
    if (needed > this.scratch.size) this.scratch = { at: this.instance.allocate(needed * 2), size: needed * 2 };
    return this.scratch.at;
  }
}
