import { availableParallelism } from "node:os";
import { GgmlType } from "../../gguf/ggml-types.js";
import { quantFormat, rowBytes } from "../../quant/index.js";
import { ggmlGeluTable } from "../../quant/float-order.js";
import { Weight } from "../../tensor/weight.js";
import { ArrayPool } from "../array-pool.js";
import { AttentionShape, HalfStorage, LayerKv } from "../backend.js";
import { roundQueryForKeys } from "../kv-format.js";
import { ScalarBackend } from "../scalar/scalar-backend.js";
import { KernelInstance, KernelName, kernelsUseRelaxedSimd, RepackName } from "./kernels.js";
import { ThreadPool } from "./thread-pool.js";

/** Types whose kernels need prepareBias's lanes (the shift is log2 of the level that means zero). */
const BIAS_SHIFT: Partial<Record<GgmlType, number>> = { [GgmlType.Q4_0]: 3, [GgmlType.Q5_0]: 4 };

const KERNELS: Partial<Record<GgmlType, KernelName>> = {
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

/** Float weights: activations are rounded to the partner type on the host, then widened to f32. */
const FLOAT_KERNELS: Partial<Record<GgmlType, KernelName>> = {
  [GgmlType.F32]: "matmul_f32",
  [GgmlType.F16]: "matmul_f16",
  [GgmlType.BF16]: "matmul_bf16",
};

/**
 * Types whose kernel takes every token of a batch in one call, on weights repacked a group of rows at a
 * time. Q4_0 goes sixteen rows a group (four quads), Q4_K and Q6_K four, and their blockwise order is the order of llama.cpp's
 * repacked kernels. Q8_0 goes two rows a group only to read them as one stream: llama.cpp (node-llama-cpp
 * 3.21.1, checked live on the quant zoo) does not repack it, and its kernel keeps vec_dot's eight lanes per
 * (row, token).
 */
interface BatchedKernel {
  layout: InterleavedLayout;
  activations: ActivationLayout;
  gemm: KernelName;
  /** Scratch bytes a thread needs per block of a row, past the activations (16-aligned). */
  threadBytesPerBlock?: number;
}

/** An interleaved layout: its repack routine, rows a group, and elements and bytes a block for a group. */
interface InterleavedLayout {
  repack: RepackName;
  rows: number;
  blockSize: number;
  groupBytesPerBlock: number;
}

/** How a gemm kernel takes its activations: the quantizer that writes them, elements and bytes a block. */
interface ActivationLayout {
  quantize: KernelName;
  blockSize: number;
  blockBytes: number;
}
/** Q8_0 planes: 32 quants, a widened f32 scale and an i32 sum a block (kernels/interleaved.ts). */
const Q8_0_PLANES: ActivationLayout = { quantize: "quantize_q8_0_plane_blocks", blockSize: 32, blockBytes: 40 };
/** Q8_0 split for the sign trick: |q|, q's sign masks and a widened f32 scale a block (kernels/q8_0.ts). */
const Q8_0_SPLIT: ActivationLayout = { quantize: "quantize_q8_0_split_blocks", blockSize: 32, blockBytes: 80 };
/** Standard Q8_K rows. */
const Q8_K_ROWS: ActivationLayout = { quantize: "quantize_q8_k_blocks", blockSize: quantFormat(GgmlType.Q8_K).blockSize, blockBytes: quantFormat(GgmlType.Q8_K).typeSize };

const BATCHED: Partial<Record<GgmlType, BatchedKernel>> = {
  [GgmlType.Q8_0]: { layout: { repack: "repack_q8_0x2", rows: 2, blockSize: 32, groupBytesPerBlock: 68 }, activations: Q8_0_SPLIT, gemm: "gemm_q8_0x2", threadBytesPerBlock: 8 },
  [GgmlType.Q4_0]: { layout: { repack: "repack_q4_0x16", rows: 16, blockSize: 32, groupBytesPerBlock: 288 }, activations: Q8_0_PLANES, gemm: "gemm_q4_0x16" },
  [GgmlType.Q4_K]: { layout: { repack: "repack_q4_kx4", rows: 4, blockSize: 256, groupBytesPerBlock: 608 }, activations: Q8_K_ROWS, gemm: "gemm_q4_kx4" },
  [GgmlType.Q6_K]: { layout: { repack: "repack_q6_kx4", rows: 4, blockSize: 256, groupBytesPerBlock: 1104 }, activations: Q8_K_ROWS, gemm: "gemm_q6_kx4" },
};
/** Where a weight lives: a bank (one of the kernels' memories) and a byte offset in it. */
interface Placement {
  bank: number;
  at: number;
}

/** The most one bank may hold: a 32-bit memory's 4 GiB, less a page so offsets stay below 2^32. */
const MAX_BANK_BYTES = 4 * 1024 ** 3 - 65536;
/** i32 words of attend_range's parameter block (kernels/attention.ts). */
const ATTENTION_PARAMS = 19;
/** Elements per unit of the element-wise range kernels (kernels/activation.ts). */
const ELEMENT_UNIT = 1024;
/** Bytes of standard rows staged at a time while repacking. */
const REPACK_CHUNK = 1 << 20;

/**
 * The scalar backend with its hot loops moved into WebAssembly SIMD on worker threads: matrix products
 * for every weight type that has a kernel, attention over the KV cache, RMSNorm, SwiGLU and the
 * activation quantizers. RoPE (its cos/sin table is computed once a pass, as glibc computes them),
 * residual adds, KV stores and embedding lookups stay on the scalar twin. Results are bit-identical to the scalar
 * backend whatever the thread count.
 */
export class WasmBackend extends ScalarBackend {
  override readonly name: string = "wasm";
  /** The kernels' memories: one 32-bit memory holds 4 GiB at most, so larger models span several. */
  private readonly banks: KernelInstance[] = [new KernelInstance()];
  private readonly pool: ThreadPool;
  private readonly resident = new WeakMap<Weight, Placement>();
  private readonly residentHalves = new WeakMap<Uint16Array, number>();
  /** Bytes of a bank that weights and KV caches may fill; the rest is left for scratch space. */
  private readonly bankLimit: number;
  private readonly results = new ArrayPool();

  constructor(threads = availableParallelism(), options: { bankBytes?: number } = {}) {
    super();
    this.pool = new ThreadPool(this.banks[0], Math.max(1, Math.floor(threads)));
    const bankBytes = Math.min(options.bankBytes ?? MAX_BANK_BYTES, MAX_BANK_BYTES);
    this.bankLimit = bankBytes - bankBytes / 8;
  }

  /** Memories in use (more than one only for models past one memory's reach). */
  get bankCount(): number {
    return this.banks.length;
  }

  get threads(): number {
    return this.pool.threads;
  }

  override matmul(w: Weight, x: Float32Array, tokens: number): Float32Array {
    const batched = BATCHED[w.type];
    if (batched && w.rows % batched.layout.rows === 0) return this.batchedMatmul(w, batched, x, tokens);
    const floatKernel = FLOAT_KERNELS[w.type];
    if (floatKernel && kernelsUseRelaxedSimd()) return this.floatMatmul(w, floatKernel, x, tokens);
    const kernel = KERNELS[w.type];
    if (!kernel) return super.matmul(w, x, tokens);
    const format = quantFormat(w.type);
    const activation = quantFormat(format.dotType);
    const cols = w.cols;
    const rows = w.rows;
    const aRow = rowBytes(activation, cols);
    const { bank, at: weights } = this.residentCopy(w);
    const instance = this.banks[bank];
    // activations, then (Q4_0, Q5_0) 32 bytes of bias lanes a block, then the output row, then the f32 input row
    const activations = instance.scratch(aRow + 16 + (cols / 32) * 32 + rows * 4 + cols * 4 + 16);
    const biasShift = BIAS_SHIFT[w.type];
    const outAt = Math.ceil((activations + aRow) / 16) * 16 + (biasShift !== undefined ? (cols / 32) * 32 : 0);
    const inputAt = outAt + Math.ceil(rows / 4) * 16;
    const quantizeInWasm =
      format.dotType === GgmlType.Q8_0 ? instance.quantizeQ8_0 : format.dotType === GgmlType.Q8_K ? instance.quantizeQ8_K : undefined;
    const out = this.results.take(tokens * rows);
    for (let t = 0; t < tokens; t++) {
      if (quantizeInWasm) {
        new Float32Array(instance.heap.buffer).set(x.subarray(t * cols, (t + 1) * cols), inputAt / 4);
        quantizeInWasm(inputAt, activations, cols);
      } else {
        activation.quantizeRow(x, t * cols, instance.heap, activations, cols);
      }
      if (biasShift !== undefined) instance.prepareBias(activations, cols, biasShift);
      this.pool.run({ kernel, bank, units: rows, work: rows * cols, weights, activations, n: cols, out: outAt, tokens: 1, outStride: rows });
      out.set(new Float32Array(instance.heap.buffer, outAt, rows), t * rows);
    }
    return out;
  }

  /** Every token in one call, on the weight as stored. */
  private floatMatmul(w: Weight, kernel: KernelName, x: Float32Array, tokens: number): Float32Array {
    const { cols, rows } = w;
    const { bank, at: weights } = this.residentCopy(w);
    const instance = this.banks[bank];
    const activation = quantFormat(quantFormat(w.type).dotType);
    const at = instance.scratch(tokens * cols * 4 + tokens * rows * 4 + 16);
    const outAt = at + tokens * cols * 4;
    const heap = new Float32Array(instance.heap.buffer);
    if (activation.type === GgmlType.F32) {
      heap.set(x.subarray(0, tokens * cols), at / 4);
    } else {
      // the twin's own rounding to F16 / BF16, widened back into the kernels' memory
      const rounded = new Uint8Array(rowBytes(activation, cols));
      for (let t = 0; t < tokens; t++) {
        activation.quantizeRow(x, t * cols, rounded, 0, cols);
        activation.dequantizeRow(rounded, 0, heap, at / 4 + t * cols, cols);
      }
    }
    this.pool.run({ kernel, bank, units: rows, work: rows * cols * tokens, weights, activations: at, n: cols, out: outAt, tokens, outStride: rows });
    return this.copyOut(heap, outAt, tokens * rows);
  }

  /** Products of one input: quantized once where every weight takes the same batched kernel activations in one bank. */
  override matmuls(ws: readonly Weight[], x: Float32Array, tokens: number): Float32Array[] {
    const kernels: BatchedKernel[] = [];
    for (const w of ws) {
      const kernel = BATCHED[w.type];
      if (!kernel || w.rows % kernel.layout.rows !== 0 || kernel.activations !== (kernels[0] ?? kernel).activations) return super.matmuls(ws, x, tokens);
      kernels.push(kernel);
    }
    const placements = ws.map((w, i) => this.repackedCopy(w, kernels[i].layout));
    if (placements.some((p) => p.bank !== placements[0].bank)) return super.matmuls(ws, x, tokens);
    return this.batchedProducts(ws, kernels, placements, x, tokens);
  }

  /** Every token in one call: activations quantized on all threads, weights repacked a group of rows at a time. */
  private batchedMatmul(w: Weight, kernel: BatchedKernel, x: Float32Array, tokens: number): Float32Array {
    return this.batchedProducts([w], [kernel], [this.repackedCopy(w, kernel.layout)], x, tokens)[0];
  }

  /** batchedMatmul for weights that share one input, one activation layout and one bank. */
  private batchedProducts(ws: readonly Weight[], kernels: readonly BatchedKernel[], placements: readonly Placement[], x: Float32Array, tokens: number): Float32Array[] {
    const cols = ws[0].cols;
    const { bank } = placements[0];
    const instance = this.banks[bank];
    const inputBytes = tokens * cols * 4;
    const { quantize, blockSize, blockBytes } = kernels[0].activations;
    const blocks = (cols * tokens) / blockSize;
    const threadBytes = Math.max(...kernels.map((k) => k.threadBytesPerBlock ?? 0)) * (cols / blockSize) * this.threads;
    const outputBytes = ws.reduce((sum, w) => sum + tokens * w.rows * 4, 0);
    const at = instance.scratch(inputBytes + blocks * blockBytes + threadBytes + outputBytes + 32);
    const actsAt = at + inputBytes;
    let outAt = Math.ceil((actsAt + blocks * blockBytes) / 16) * 16 + threadBytes;
    new Float32Array(instance.heap.buffer).set(x.subarray(0, tokens * cols), at / 4);
    this.pool.run({ kernel: quantize, bank, units: blocks, work: cols * tokens * 4, weights: 0, activations: at, n: cols, out: actsAt, tokens, outStride: 0 });
    return ws.map((w, i) => {
      const rows = w.rows;
      const kernel = kernels[i];
      this.pool.run({ kernel: kernel.gemm, bank, units: rows / kernel.layout.rows, work: rows * cols * tokens, weights: placements[i].at, activations: actsAt, n: cols, out: outAt, tokens, outStride: rows });
      const out = this.copyOut(new Float32Array(instance.heap.buffer), outAt, tokens * rows);
      outAt += tokens * rows * 4;
      return out;
    });
  }

  /** Mean empty dispatch round trip to the worker threads, in microseconds. */
  measureDispatch(): number {
    return this.pool.measureDispatch();
  }

  /** KV caches live in the kernels' memories (a shared memory never moves, so the views stay valid). */
  readonly halfStorage: HalfStorage = {
    allocate: (length) => {
      const bytes = length * 2;
      // the bank with the most room, so a layer's keys and values land together
      let bank = this.banks.reduce((best, b, i) => (b.used < this.banks[best].used ? i : best), 0);
      if (this.banks[bank].used + bytes > this.bankLimit) bank = this.addBank();
      const instance = this.banks[bank];
      const at = instance.reuse(bytes) ?? instance.allocate(bytes);
      const array = new Uint16Array(instance.memory.buffer, at, length);
      this.residentHalves.set(array, bank);
      return array;
    },
    release: (array) => {
      const bank = this.residentHalves.get(array);
      this.residentHalves.delete(array);
      if (bank !== undefined) this.banks[bank].release(array.byteOffset, array.byteLength);
    },
  };

  override attention(q: Float32Array, kv: LayerKv, positions: ArrayLike<number>, shape: AttentionShape): Float32Array {
    const { heads, kvHeads, headDim, scale } = shape;
    const tokens = positions.length;
    const bank = this.residentHalves.get(kv.keys);
    const type = kv.type ?? "f16";
    if (!kernelsUseRelaxedSimd() || bank === undefined || this.residentHalves.get(kv.values) !== bank || headDim % 4 !== 0) {
      return super.attention(q, kv, positions, shape);
    }
    // The kernel rounds q through F16 itself; a quantized cache's rounding is the twin's.
    if (type !== "f16") q = roundQueryForKeys(q, type);
    const instance = this.banks[bank];
    let last = 0;
    for (let t = 0; t < tokens; t++) last = Math.max(last, positions[t]);
    const cells = Math.ceil((last + 1) / 32) * 32;
    // Per thread: K and V of one head widened to f32, the scores, 32 accumulator rows and q through F16.
    const partBytes = (2 * cells * headDim + cells + 33 * headDim) * 4;
    const qBytes = q.length * 4;
    const rowCount = kv.rows ? last + 1 : 0;
    const at = instance.scratch(ATTENTION_PARAMS * 4 + tokens * 4 + rowCount * 4 + 2 * qBytes + this.threads * partBytes + 64);
    const positionsAt = at + ATTENTION_PARAMS * 4;
    const rowsAt = positionsAt + tokens * 4;
    const qAt = Math.ceil((rowsAt + rowCount * 4) / 16) * 16;
    const outAt = qAt + qBytes;
    const workAt = outAt + qBytes;
    // Enough chunks of query tokens that every thread gets several units.
    const chunk = Math.max(1, Math.min(16, Math.ceil((tokens * kvHeads) / (8 * this.threads))));
    const params = new Int32Array(instance.memory.buffer, at, ATTENTION_PARAMS);
    params.set([qAt, kv.keys.byteOffset, kv.values.byteOffset, outAt, workAt, partBytes, positionsAt, tokens, heads, kvHeads, headDim, f32Bits(scale), tokens > 1 && headDim % 8 === 0 ? 1 : 0, chunk, cells, kv.rows ? rowsAt : 0, type === "q8_0" ? 1 : 0, shape.window ?? 0, f32Bits(shape.softcap ?? 0)]);
    new Int32Array(instance.memory.buffer, positionsAt, tokens).set(positions);
    if (kv.rows) new Int32Array(instance.memory.buffer, rowsAt, rowCount).set(kv.rows.subarray(0, rowCount));
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(q, qAt / 4);
    const units = kvHeads * Math.ceil(tokens / chunk);
    this.pool.run({ kernel: "attend_range", bank, units, work: tokens * heads * cells * headDim * 2, weights: at, activations: 0, n: 0, out: 0, tokens, outStride: 0 });
    return this.copyOut(heap, outAt, q.length);
  }

  /** Rows split across threads; the sum of squares keeps the twin's sequential f64 order. */
  override rmsNorm(x: Float32Array, gain: Float32Array, eps: number, width: number): Float32Array {
    // eps meets an f32 mean in f32 arithmetic there; only an f32 eps gives the twin's f64-then-round sum
    if (Math.fround(eps) !== eps) return super.rmsNorm(x, gain, eps, width);
    const instance = this.banks[0];
    const at = instance.scratch(2 * x.length * 4 + width * 4 + 16);
    const outAt = at + x.length * 4;
    const gainAt = outAt + x.length * 4;
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(x, at / 4);
    heap.set(gain, gainAt / 4);
    const rows = x.length / width;
    this.pool.run({ kernel: "rms_norm_rows", bank: 0, units: rows, work: x.length * 8, weights: gainAt, activations: at, n: width, out: outAt, tokens: f32Bits(eps), outStride: 0 });
    return this.copyOut(heap, outAt, x.length);
  }

  /** silu(gate)·up in SIMD where the kernels have the fused multiply-add ggml's exp needs. */
  override swiglu(gate: Float32Array, up: Float32Array): Float32Array {
    if (!kernelsUseRelaxedSimd() || gate.length % 4 !== 0) return super.swiglu(gate, up);
    const bytes = gate.length * 4;
    const instance = this.banks[0];
    const at = instance.scratch(3 * bytes);
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(gate, at / 4);
    heap.set(up, (at + bytes) / 4);
    instance.siluMul(at, at + bytes, at + 2 * bytes, gate.length);
    return this.copyOut(heap, at + 2 * bytes, gate.length);
  }

  /** gelu(gate)·up through the scalar twin's own GELU table, copied into the first bank once. */
  override geglu(gate: Float32Array, up: Float32Array): Float32Array {
    const instance = this.banks[0];
    if (this.geluTableAt === undefined) {
      this.geluTableAt = instance.allocate(65536 * 4);
      new Float32Array(instance.memory.buffer, this.geluTableAt, 65536).set(ggmlGeluTable());
    }
    const bytes = gate.length * 4;
    const at = instance.scratch(3 * bytes);
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(gate, at / 4);
    heap.set(up, (at + bytes) / 4);
    this.pool.run({ kernel: "gelu_mul_range", bank: 0, units: Math.ceil(gate.length / ELEMENT_UNIT), work: gate.length * 4, weights: this.geluTableAt, activations: at, n: gate.length, out: at + 2 * bytes, tokens: at + bytes, outStride: 0 });
    return this.copyOut(heap, at + 2 * bytes, gate.length);
  }

  override softcapInPlace(x: Float32Array, cap: number): void {
    const instance = this.banks[0];
    const at = instance.scratch(x.length * 4);
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(x, at / 4);
    this.pool.run({ kernel: "softcap_range", bank: 0, units: Math.ceil(x.length / ELEMENT_UNIT), work: x.length * 40, weights: f32Bits(Math.fround(cap)), activations: at, n: x.length, out: 0, tokens: 0, outStride: 0 });
    x.set(heap.subarray(at / 4, at / 4 + x.length));
  }

  recycle(...arrays: Float32Array[]): void {
    this.results.give(arrays);
  }

  /** `length` floats of a kernel's output at byte offset `at`, copied out into a result array. */
  private copyOut(heap: Float32Array, at: number, length: number): Float32Array {
    const out = this.results.take(length);
    out.set(heap.subarray(at / 4, at / 4 + length));
    return out;
  }

  /** Where the GELU table sits in the first bank, once a GeGLU has needed it. */
  private geluTableAt?: number;

  dispose(): void {
    this.pool.dispose();
  }

  /** The weight's bytes as they are, streamed from its source into a bank once. */
  private residentCopy(w: Weight): Placement {
    let placement = this.resident.get(w);
    if (!placement) {
      placement = this.place(w, w.byteLength);
      const { bank, at } = placement;
      w.read(0, this.banks[bank].heap.subarray(at, at + w.byteLength));
      this.resident.set(w, placement);
    }
    return placement;
  }

  /** The weight in its interleaved layout, repacked once through a staging area of the bank's scratch space. */
  private repackedCopy(w: Weight, layout: InterleavedLayout): Placement {
    let placement = this.resident.get(w);
    if (placement) return placement;
    const stride = w.byteLength / w.rows;
    const groupBytes = (w.cols / layout.blockSize) * layout.groupBytesPerBlock;
    placement = this.place(w, (w.rows / layout.rows) * groupBytes);
    const instance = this.banks[placement.bank];
    const chunkRows = Math.max(4, Math.floor(REPACK_CHUNK / stride / 4) * 4);
    for (let row = 0; row < w.rows; row += chunkRows) {
      const count = Math.min(chunkRows, w.rows - row);
      const staging = instance.scratch(count * stride);
      w.read(row * stride, instance.heap.subarray(staging, staging + count * stride));
      instance.repacks[layout.repack](staging, placement.at + (row / layout.rows) * groupBytes, count, w.cols);
    }
    this.resident.set(w, placement);
    return placement;
  }

  /** Room for `bytes` of a weight: in the last bank while it stays under the limit, else in a new one. */
  private place(w: Weight, bytes: number): Placement {
    if (bytes > this.bankLimit) throw new RangeError(`${w.name}: ${bytes} bytes do not fit one WebAssembly memory`);
    let bank = this.banks.length - 1;
    if (this.banks[bank].used + bytes > this.bankLimit) bank = this.addBank();
    return { bank, at: this.banks[bank].allocate(bytes) };
  }

  private addBank(): number {
    const instance = new KernelInstance();
    this.banks.push(instance);
    return this.pool.addBank(instance);
  }
}

/** The bits of x rounded to f32, for a float that travels in an i32 slot of a kernel's arguments. */
function f32Bits(x: number): number {
  return new Int32Array(Float32Array.of(x).buffer)[0];
}
