import { availableParallelism } from "node:os";
import { GgmlType } from "../../gguf/ggml-types.js";
import { quantFormat, rowBytes } from "../../quant/index.js";
import { ggmlGeluTable } from "../../quant/float-order.js";
import { Weight } from "../../tensor/weight.js";
import { ArrayPool } from "../array-pool.js";
import { collectGarbage } from "../collect-garbage.js";
import { AttentionSegment, AttentionShape, DecoderLayerCall, DecoderLayerWeights, GateActivation, HalfStorage, KvType, LayerKv, RopeParams } from "../backend.js";
import { kvRowHalves } from "../kv-format.js";
import { ScalarBackend } from "../scalar/scalar-backend.js";
import { align16, KERNEL_INDEX, KernelInstance, KernelName, kernelsUseRelaxedSimd, RepackName } from "./kernels.js";
import { chunkOf, DispatchTiming, ThreadPool } from "./thread-pool.js";

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
 * time. Q4_0 and Q8_0 go sixteen rows a group (four quads of four), Q4_K and Q6_K four, and their blockwise
 * order is the order of llama.cpp's repacked kernels. (node-llama-cpp 3.21.1 does not repack Q8_0 on
 * x86 and keeps vec_dot's eight lanes per (row, token) there: our Q8_0 products differ from its by float
 * rounding, as llama.cpp's own builds with and without repacking differ.)
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
/** Q8_0 records: 32 quants, a widened f32 scale and a 32-bit bias word a (token, block), in the order the batched kernel reads them (kernels/interleaved.ts). */
const Q8_0_RECORDS: ActivationLayout = { quantize: "quantize_q8_0_record_blocks", blockSize: 32, blockBytes: 40 };
/** Q8_0 split for the sign trick: |q|, q's sign masks, a widened f32 scale and Σ|q| of the negative q (kernels/q8_0.ts). */
const Q8_0_SPLIT: ActivationLayout = { quantize: "quantize_q8_0_split_blocks", blockSize: 32, blockBytes: 80 };
/** Standard Q8_K rows. */
const Q8_K_ROWS: ActivationLayout = { quantize: "quantize_q8_k_blocks", blockSize: quantFormat(GgmlType.Q8_K).blockSize, blockBytes: quantFormat(GgmlType.Q8_K).typeSize };

const BATCHED: Partial<Record<GgmlType, BatchedKernel>> = {
  [GgmlType.Q8_0]: { layout: { repack: "repack_q8_0x16", rows: 16, blockSize: 32, groupBytesPerBlock: 544 }, activations: Q8_0_SPLIT, gemm: "gemm_q8_0x16" },
  [GgmlType.Q4_0]: { layout: { repack: "repack_q4_0x16", rows: 16, blockSize: 32, groupBytesPerBlock: 288 }, activations: Q8_0_RECORDS, gemm: "gemm_q4_0x16", threadBytesPerBlock: 256 },
  [GgmlType.Q4_K]: { layout: { repack: "repack_q4_kx8", rows: 8, blockSize: 256, groupBytesPerBlock: 1184 }, activations: Q8_K_ROWS, gemm: "gemm_q4_kx8" },
  [GgmlType.Q6_K]: { layout: { repack: "repack_q6_kx4", rows: 4, blockSize: 256, groupBytesPerBlock: 840 }, activations: Q8_K_ROWS, gemm: "gemm_q6_kx4", threadBytesPerBlock: 1104 },
};
/** Where a weight lives: a bank (one of the kernels' memories) and a byte offset in it. */
interface Placement {
  bank: number;
  at: number;
}

/** The most one bank may hold: a 32-bit memory's 4 GiB, less a page so offsets stay below 2^32. */
const MAX_BANK_BYTES = 4 * 1024 ** 3 - 65536;
/** i32 words of attend_range's parameter block before its sequences' records, and of each record (kernels/attention.ts). */
const ATTENTION_HEADER_WORDS = 11;
const ATTENTION_SEGMENT_WORDS = 12;
/** Query rows a batched attention unit takes together (QUERY_BLOCK in kernels/attention.ts). */
const ATTENTION_QUERY_BLOCK = 16;
/** A sequence's attention mode (SINGLE, BATCHED, LONE in kernels/attention.ts). */
const ATTENTION_SINGLE = 0;
const ATTENTION_BATCHED = 1;
const ATTENTION_LONE = 2;
/**
 * What quantizing an activation costs, in multiply-adds of a product (the pool's measure of work). It was
 * set when an element took about 2.3 ns against 0.03 ns a multiply-add, single thread. Since the cheaper
 * rounding and amax an element takes about 0.95 ns; the 32 that follows kept one token's feed-forward-wide
 * quantizer (5632 for TinyLlama) on one thread and measured no faster in decode (0.97×, within this
 * machine's noise), so 64 stays. At 4 a decode step's quantizers all stayed on one thread.
 */
const QUANTIZE_WORK = 64;
/** Elements per unit of the element-wise range kernels (kernels/activation.ts). */
const ELEMENT_UNIT = 1024;
/**
 * Up to this many tokens a fused feed-forward layer runs as one run_stages program (one dispatch for its
 * six kernels, see kernels/stages.ts) rather than a dispatch a kernel: a decode step's kernels are short,
 * and the host's work around each dispatch weighed as much as some of them.
 */
const STAGED_TOKENS = 16;
/**
 * Up to this many tokens (a model's pass, PASS_TOKENS in src/models/llama.ts) decoder layers run as one
 * run_stages program (decoderLayers). A prompt's pass then leaves the host only at its ends: the host's
 * copies and dispatches between kernels had kept the worker idle for about a tenth of a 512-token pass
 * (perf, per thread).
 */
const STAGED_LAYER_TOKENS = 128;
/** i32 words of a run_stages stage (STAGE_WORDS in kernels/stages.ts). */
const STAGE_WORDS = 12;

/** Scratch bytes for a run_stages program of `count` stages, with room to align its start. */
function programBytes(count: number): number {
  return (2 + count * STAGE_WORDS) * 4 + 16;
}

/** attend_range's parameter block for a call, where q and the output lie, and room for more past them. */
interface AttentionPlan {
  instance: KernelInstance;
  bank: number;
  params: number;
  units: number;
  work: number;
  qAt: number;
  outAt: number;
  extraAt: number;
}

/** How attend_range takes a step's sequences (planAttention), before anything is written. */
interface AttentionLayout {
  instance: KernelInstance;
  bank: number;
  type: KvType;
  plans: { start: number; length: number; kv: LayerKv; cells: number; rowCount: number; chunk: number; firstUnit: number; mode: number }[];
  units: number;
  work: number;
  blockHeads: number;
  paramWords: number;
  rowWords: number;
  /** Scratch bytes a thread. */
  partBytes: number;
  qBytes: number;
}

/** Where attend_range's inputs lie: its parameter block, the positions, the rows, q, the output and the threads' scratch. */
interface AttentionPlaces {
  params: number;
  positions: number;
  rows: number;
  q: number;
  out: number;
  work: number;
}

/** What attentionStages rotates, stores and attends over: q, k and v, RoPE's tables, the rows' addresses, attend_range's parameters and units. */
interface StepPlaces {
  q: number;
  k: number;
  v: number;
  cos: number;
  sin: number;
  table: number;
  params: number;
  units: number;
}

/** Where a decoder layer's stages read and write: the residual stream, the norm's output, a product's output, activations and intermediates. */
interface LayerPlaces {
  x: number;
  norm: number;
  product: number;
  inActs: number;
  q: number;
  k: number;
  v: number;
  attended: number;
  attendedActs: number;
  gate: number;
  up: number;
  hiddenActs: number;
}

/** The most stages a decoder layer takes (decoderLayerStages: 25 with biases, head norms and post-norms). */
const LAYER_STAGES = 28;

/** One stage of a run_stages program: a range kernel's call over `units`, and whether every thread waits for the rest after it. */
interface Stage {
  kernel: KernelName;
  units: number;
  weights: number;
  activations: number;
  n: number;
  out: number;
  outStride: number;
  barrier: boolean;
  /** The kernel's `tokens` argument where it is not the token count (the element-wise kernels' second operand, rope_range's rows a token). */
  tokensWord?: number;
}

/** Bytes of standard rows staged at a time while repacking. */
const REPACK_CHUNK = 1 << 20;
/** Floats of a spare result array from which it is let go once a forward pass ends (ArrayPool.release). */
const RELEASED_AFTER_PASS = 1 << 18;
/**
 * Tokens a fused feed-forward layer computes at a time, so that its wide intermediates take a few MB of
 * scratch space; each chunk streams the weights again, a small cost next to 128 tokens of arithmetic.
 */
const FEED_FORWARD_CHUNK = 128;

/**
 * The scalar backend with its hot loops moved into WebAssembly SIMD on worker threads: matrix products
 * for every weight type that has a kernel, attention over the KV cache, RMSNorm, RoPE (on the twin's
 * cos/sin table, computed once a pass as glibc computes them), KV stores, SwiGLU, GeGLU, residual adds
 * and the activation quantizers; a decode step's decoder layers run as one program of these kernels
 * (decoderLayers). Embedding lookups stay on the scalar twin. Results are bit-identical to the scalar
 * backend whatever the thread count.
 */
export class WasmBackend extends ScalarBackend {
  override readonly name: string = "wasm";
  /** The kernels' memories: one 32-bit memory holds 4 GiB at most, so larger models span several. */
  private readonly banks: KernelInstance[] = [new KernelInstance()];
  private readonly pool: ThreadPool;
  private readonly resident = new WeakMap<Weight | Float32Array, Placement>();
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
    const outAt = align16(activations + aRow) + (biasShift !== undefined ? (cols / 32) * 32 : 0);
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
    const staged = this.stagedProducts(ws);
    if (!staged) return super.matmuls(ws, x, tokens);
    return this.batchedProducts(ws, staged.kernels, staged.placements, x, tokens);
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
    const actsBytes = activationBytes(kernels, cols, tokens, this.threads);
    const outputBytes = ws.reduce((sum, w) => sum + tokens * w.rows * 4, 0);
    const at = instance.scratch(inputBytes + actsBytes + outputBytes + programBytes(2) + 32);
    const actsAt = at + inputBytes;
    let outAt = align16(actsAt + actsBytes);
    new Float32Array(instance.heap.buffer).set(x.subarray(0, tokens * cols), at / 4);
    if (tokens <= STAGED_TOKENS && (ws.length === 1 || adjoining(ws, kernels, placements))) {
      // quantizing and the product (of one weight, or of weights back to back as one) in one dispatch
      const kernel = kernels[0];
      const rows = ws.reduce((sum, w) => sum + w.rows, 0);
      const stages: Stage[] = [
        { kernel: kernel.activations.quantize, units: (cols * tokens) / kernel.activations.blockSize, weights: 0, activations: at, n: cols, out: actsAt, outStride: 0, barrier: true },
        { kernel: kernel.gemm, units: rows / kernel.layout.rows, weights: placements[0].at, activations: actsAt, n: cols, out: outAt, outStride: rows, barrier: false },
      ];
      this.runStages(bank, align16(outAt + outputBytes), stages, tokens);
      return this.splitProducts(ws, tokens, outAt, bank);
    }
    this.quantizeActivations(bank, kernels[0].activations, at, cols, tokens, actsAt);
    if (adjoining(ws, kernels, placements)) return this.adjoiningProducts(ws, kernels[0], placements[0].at, actsAt, tokens, outAt, bank);
    return ws.map((w, i) => {
      this.gemm(bank, kernels[i], w, placements[i].at, actsAt, tokens, outAt);
      const out = this.copyOut(new Float32Array(instance.heap.buffer), outAt, tokens * w.rows);
      outAt += tokens * w.rows * 4;
      return out;
    });
  }

  /**
   * Weights of one kernel repacked back to back (Q, K and V are, placed on first use one after another)
   * as one matrix of their rows together: one dispatch, so one tail where the threads wait, instead of one
   * each (K and V are small: for Gemma-2 1.3 MB each). Each weight's columns of [tokens, Σ rows] come out
   * as its own [tokens, rows].
   */
  private adjoiningProducts(ws: readonly Weight[], kernel: BatchedKernel, weightsAt: number, actsAt: number, tokens: number, outAt: number, bank: number): Float32Array[] {
    const total = ws.reduce((sum, w) => sum + w.rows, 0);
    const cols = ws[0].cols;
    this.pool.run({ kernel: kernel.gemm, bank, units: total / kernel.layout.rows, work: total * cols * tokens, weights: weightsAt, activations: actsAt, n: cols, out: outAt, tokens, outStride: total });
    return this.splitProducts(ws, tokens, outAt, bank);
  }

  /** The products of adjoining weights at outAt, [tokens, Σ rows], as one [tokens, rows] array a weight. */
  private splitProducts(ws: readonly Weight[], tokens: number, outAt: number, bank: number): Float32Array[] {
    const total = ws.reduce((sum, w) => sum + w.rows, 0);
    const heap = new Float32Array(this.banks[bank].heap.buffer);
    let column = outAt / 4;
    return ws.map((w) => {
      const out = this.results.take(tokens * w.rows);
      for (let t = 0; t < tokens; t++) out.set(heap.subarray(column + t * total, column + t * total + w.rows), t * w.rows);
      column += w.rows;
      return out;
    });
  }

  /** f32 rows at `inputAt` → the activation layout at `actsAt`, on all threads. */
  private quantizeActivations(bank: number, layout: ActivationLayout, inputAt: number, cols: number, tokens: number, actsAt: number): void {
    const { quantize, blockSize } = layout;
    this.pool.run({ kernel: quantize, bank, units: (cols * tokens) / blockSize, work: cols * tokens * QUANTIZE_WORK, weights: 0, activations: inputAt, n: cols, out: actsAt, tokens, outStride: 0 });
  }

  /** [tokens, w.rows] f32 at `outAt` = activations at `actsAt` · the repacked weight at `weightsAt`. */
  private gemm(bank: number, kernel: BatchedKernel, w: Weight, weightsAt: number, actsAt: number, tokens: number, outAt: number): void {
    const { rows, cols } = w;
    this.pool.run({ kernel: kernel.gemm, bank, units: rows / kernel.layout.rows, work: rows * cols * tokens, weights: weightsAt, activations: actsAt, n: cols, out: outAt, tokens, outStride: rows });
  }

  /**
   * The whole gated feed-forward layer in the kernels' memory, FEED_FORWARD_CHUNK tokens at a time: the
   * gate, up and activated rows never leave it. The steps and their arithmetic are matmuls, swiglu or
   * geglu, then matmul's, so the result is theirs bit for bit.
   */
  gatedFeedForward(gate: Weight, up: Weight, down: Weight, activation: GateActivation, x: Float32Array, tokens: number): Float32Array | undefined {
    const gateUp = this.stagedProducts([gate, up]);
    const downProduct = this.stagedProducts([down]);
    // the composed path's activation kernels: SiLU needs relaxed SIMD's FMA, GELU's table sits in bank 0
    if (!gateUp || !downProduct || (activation === "silu" && (!kernelsUseRelaxedSimd() || gate.rows % 4 !== 0))) return undefined;
    const bank = gateUp.bank;
    if (downProduct.bank !== bank || (activation === "gelu" && bank !== 0)) return undefined;
    const [gateKernel, upKernel] = gateUp.kernels;
    const [downKernel] = downProduct.kernels;
    const placements = [...gateUp.placements, ...downProduct.placements];
    const instance = this.banks[bank];
    const { cols } = gate;
    const width = gate.rows;
    const chunk = Math.min(tokens, FEED_FORWARD_CHUNK);
    const inputBytes = chunk * cols * 4;
    const actsBytes = activationBytes([gateKernel, upKernel], cols, chunk, this.threads);
    const wideBytes = chunk * width * 4;
    const hiddenActsBytes = activationBytes([downKernel], width, chunk, this.threads);
    const outBytes = chunk * down.rows * 4;
    const at = instance.scratch(inputBytes + actsBytes + 2 * wideBytes + hiddenActsBytes + outBytes + programBytes(6) + 64);
    const actsAt = at + inputBytes;
    const gateAt = align16(actsAt + actsBytes);
    const upAt = gateAt + wideBytes;
    const hiddenActsAt = upAt + wideBytes;
    const outAt = align16(hiddenActsAt + hiddenActsBytes);
    const heap = new Float32Array(instance.heap.buffer);
    const out = this.results.take(tokens * down.rows);
    if (tokens <= STAGED_TOKENS) {
      heap.set(x.subarray(0, tokens * cols), at / 4);
      const elements = tokens * width;
      const stages: Stage[] = [
        ...productStages(gateUp, at, cols, tokens, actsAt, [gateAt, upAt]),
        gatedActivationStage(activation, activation === "gelu" ? this.geluTable() : 0, gateAt, upAt, elements),
        ...productStages(downProduct, gateAt, width, tokens, hiddenActsAt, [outAt]),
      ];
      // the program's end waits for every thread
      stages[stages.length - 1].barrier = false;
      this.runStages(bank, align16(outAt + outBytes), stages, tokens);
      out.set(heap.subarray(outAt / 4, outAt / 4 + tokens * down.rows));
      return out;
    }
    for (let first = 0; first < tokens; first += chunk) {
      const n = Math.min(chunk, tokens - first);
      heap.set(x.subarray(first * cols, (first + n) * cols), at / 4);
      this.quantizeActivations(bank, gateKernel.activations, at, cols, n, actsAt);
      this.gemm(bank, gateKernel, gate, placements[0].at, actsAt, n, gateAt);
      this.gemm(bank, upKernel, up, placements[1].at, actsAt, n, upAt);
      this.runGatedActivation(bank, activation, gateAt, upAt, gateAt, n * width);
      this.quantizeActivations(bank, downKernel.activations, gateAt, width, n, hiddenActsAt);
      this.gemm(bank, downKernel, down, placements[2].at, hiddenActsAt, n, outAt);
      out.set(heap.subarray(outAt / 4, outAt / 4 + n * down.rows), first * down.rows);
    }
    return out;
  }

  /**
   * Writes `stages` as a run_stages program at `programAt` (kernels/stages.ts: a count, a barrier counter,
   * then STAGE_WORDS a stage, its claim counter zeroed) and runs it on every thread at once.
   */
  private runStages(bank: number, programAt: number, stages: readonly Stage[], tokens: number): void {
    const words = new Int32Array(this.banks[bank].memory.buffer, programAt, 2 + stages.length * STAGE_WORDS);
    words[0] = stages.length;
    words[1] = 0;
    const parts = this.pool.parts;
    for (let i = 0, at = 2; i < stages.length; i++, at += STAGE_WORDS) {
      const stage = stages[i];
      words[at] = KERNEL_INDEX[stage.kernel];
      words[at + 1] = stage.weights;
      words[at + 2] = stage.activations;
      words[at + 3] = stage.n;
      words[at + 4] = stage.out;
      words[at + 5] = stage.tokensWord ?? tokens;
      words[at + 6] = stage.outStride;
      words[at + 7] = stage.units;
      words[at + 8] = chunkOf(stage.units, parts);
      words[at + 9] = 0; // the stage's claim counter
      words[at + 10] = stage.barrier ? 1 : 0;
      words[at + 11] = 0;
    }
    this.pool.runTogether("run_stages", bank, programAt);
  }

  /** Empty dispatch round trips to the worker threads, in microseconds (median and mean). */
  measureDispatch(): DispatchTiming {
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

  /** RoPE in the kernels' memory: the twin's angles, rotated in SIMD (rope_rows, the twin's f32 steps). */
  override rope(x: Float32Array, heads: number, headDim: number, positions: ArrayLike<number>, params: RopeParams): void {
    const half = params.dims / 2;
    const { cos, sin } = this.ropeAngles(positions, params);
    const instance = this.banks[0];
    const angles = positions.length * half;
    const at = instance.scratch((x.length + 2 * angles) * 4);
    const cosAt = at + x.length * 4;
    const sinAt = cosAt + angles * 4;
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(x, at / 4);
    heap.set(cos.subarray(0, angles), cosAt / 4);
    heap.set(sin.subarray(0, angles), sinAt / 4);
    instance.ropeRows(at, x.length / headDim, heads, headDim, half, cosAt, sinAt, params.ordering === "neox");
    x.set(heap.subarray(at / 4, at / 4 + x.length));
  }

  /** Rows rounded to the cache's type in the kernels' memory, where the cache lives (the twin's rounding, in SIMD). */
  override storeKv(kv: LayerKv, k: Float32Array, v: Float32Array, positions: ArrayLike<number>, kvWidth: number): void {
    const bank = this.residentHalves.get(kv.keys);
    if (bank === undefined || this.residentHalves.get(kv.values) !== bank) return super.storeKv(kv, k, v, positions, kvWidth);
    const instance = this.banks[bank];
    const type = kv.type ?? "f16";
    const tokens = positions.length;
    const values = tokens * kvWidth;
    const at = instance.scratch(2 * values * 4);
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(k.subarray(0, values), at / 4);
    heap.set(v.subarray(0, values), at / 4 + values);
    const write = type === "q8_0" ? instance.quantizeQ8_0 : instance.halvesFromFloats;
    const rowBytes = kvRowHalves(kvWidth, type) * 2;
    for (let t = 0; t < tokens; t++) {
      const row = kv.rows ? kv.rows[positions[t]] : positions[t];
      write(at + t * kvWidth * 4, kv.keys.byteOffset + row * rowBytes, kvWidth);
      write(at + (values + t * kvWidth) * 4, kv.values.byteOffset + row * rowBytes, kvWidth);
    }
  }

  override attention(q: Float32Array, kv: LayerKv, positions: ArrayLike<number>, shape: AttentionShape): Float32Array {
    return this.attendSequences(q, [{ start: 0, length: positions.length, kv }], positions, shape);
  }

  /**
   * Every sequence's attention in one dispatch, where their caches share a bank and a type (a paged
   * pool's always do): a decode step of eight sequences waits on one round trip per layer, not eight,
   * and the threads share out all their (KV head, chunk) units at once.
   */
  override attendSequences(q: Float32Array, segments: readonly AttentionSegment[], positions: ArrayLike<number>, shape: AttentionShape): Float32Array {
    const plan = this.planAttention(segments, positions, shape, 0);
    if (!plan) {
      // one at a time: each through this.attention, which takes the kernel where its own cache allows
      return segments.length === 1 ? super.attention(q, segments[0].kv, positions, shape) : super.attendSequences(q, segments, positions, shape);
    }
    const { instance, bank, params, units, work, qAt, outAt } = plan;
    new Float32Array(instance.heap.buffer).set(q, qAt / 4);
    if ((segments[0].kv.type ?? "f16") === "q8_0") instance.roundThroughQ8_0(qAt, q.length);
    this.pool.run({ kernel: "attend_range", bank, units, work, weights: params, activations: 0, n: 0, out: 0, tokens: positions.length, outStride: 0 });
    return this.copyOut(new Float32Array(instance.heap.buffer), outAt, q.length);
  }

  /**
   * attend_range's parameter block for these sequences (kernels/attention.ts), written into scratch space
   * with room for q [tokens, heads·headDim] at qAt (for the caller to fill) and `extraBytes` more past it at
   * extraAt; undefined where the kernel cannot take them (caches in different banks or of different types,
   * no relaxed SIMD, heads not in fours).
   */
  private planAttention(segments: readonly AttentionSegment[], positions: ArrayLike<number>, shape: AttentionShape, extraBytes: number): AttentionPlan | undefined {
    const layout = this.attentionLayout(segments, positions, shape);
    if (!layout) return undefined;
    const { instance, paramWords, rowWords, partBytes, qBytes } = layout;
    const tokens = positions.length;
    const at = instance.scratch((paramWords + tokens + rowWords) * 4 + 2 * qBytes + this.threads * partBytes + extraBytes + 64);
    const positionsAt = at + paramWords * 4;
    const rowsAt = positionsAt + tokens * 4;
    const qAt = align16(rowsAt + rowWords * 4);
    const outAt = qAt + qBytes;
    const workAt = outAt + qBytes;
    const places = { params: at, positions: positionsAt, rows: rowsAt, q: qAt, out: outAt, work: workAt };
    this.writeAttentionRows(layout, places, positions);
    this.writeAttentionParams(layout, places, shape);
    return { instance, bank: layout.bank, params: at, units: layout.units, work: layout.work, qAt, outAt, extraAt: workAt + this.threads * partBytes };
  }

  /** How attend_range takes these sequences (see planAttention), and the bytes its parameters and scratch need; nothing is written. */
  private attentionLayout(segments: readonly AttentionSegment[], positions: ArrayLike<number>, shape: AttentionShape): AttentionLayout | undefined {
    const { heads, kvHeads, headDim } = shape;
    const type = segments[0].kv.type ?? "f16";
    const bank = this.residentHalves.get(segments[0].kv.keys);
    const together = (kv: LayerKv): boolean => this.residentHalves.get(kv.keys) === bank && this.residentHalves.get(kv.values) === bank && (kv.type ?? "f16") === type;
    if (!kernelsUseRelaxedSimd() || bank === undefined || headDim % 4 !== 0 || !segments.every(({ kv }) => together(kv))) return undefined;
    // The kernel rounds q through F16 itself; for a Q8_0 cache q goes through Q8_0 blocks once it is in
    // the kernels' memory (attendSequences), as the twin's roundQueryForKeys does.
    // A token whose query heads each have a KV head of their own is cut into one block of heads a thread
    // (as many as a block of query rows, at most): each block reads a stretch of every row of the cache
    // (see attendLoneHeads).
    const loneHeads = Math.min(ATTENTION_QUERY_BLOCK, Math.ceil(kvHeads / this.threads));
    let units = 0;
    let work = 0;
    const plans = segments.map(({ start, length, kv }) => {
      let last = 0;
      for (let t = start; t < start + length; t++) last = Math.max(last, positions[t]);
      // Enough chunks of query tokens that every thread gets several units, and no more: each unit widens
      // its KV head's visible rows again (at 16 tokens a chunk, Gemma-2's two query heads of 256 per KV head
      // spent about as long widening as weighing; 1.95 → 1.40 s of attention in a pp512 at up to 128).
      const chunk = Math.max(1, Math.min(128, Math.ceil((length * kvHeads) / (8 * this.threads))));
      // the kernel's mode for this sequence (S_MODE in kernels/attention.ts); a lone token's units are
      // blocks of loneHeads heads
      const lone = type === "f16" && length === 1 && headDim % 32 === 0 && heads === kvHeads;
      const mode = lone ? ATTENTION_LONE : length > 1 && headDim % 8 === 0 ? ATTENTION_BATCHED : ATTENTION_SINGLE;
      const cells = Math.ceil((last + 1) / 32) * 32;
      const plan = { start, length, kv, cells, rowCount: kv.rows ? last + 1 : 0, chunk, firstUnit: units, mode };
      units += lone ? Math.ceil(kvHeads / loneHeads) : kvHeads * Math.ceil(length / chunk);
      // per head, widening its K and V rows and the softmax cost about as much as 64 more cells of products
      work += length * heads * (cells + 64) * headDim * 2;
      return plan;
    });
    const cells = Math.max(...plans.map((plan) => plan.cells));
    // heads whose slot sums a thread keeps at once: a block of lone heads, or a pair
    const blockHeads = plans.some((plan) => plan.mode === ATTENTION_LONE) ? loneHeads : 0;
    // Per thread: K and V of one head widened to f32, the scores and q through F16 of a block of query
    // rows, 32 accumulator rows for each of two heads (or a block of lone heads), and 16 bytes a row of the
    // block's bookkeeping (kernels/attention.ts).
    const partBytes = (2 * cells * headDim + ATTENTION_QUERY_BLOCK * (cells + headDim + 4) + 32 * Math.max(2, blockHeads) * headDim) * 4;
    return {
      instance: this.banks[bank],
      bank,
      type,
      plans,
      units,
      work,
      blockHeads,
      paramWords: ATTENTION_HEADER_WORDS + segments.length * ATTENTION_SEGMENT_WORDS,
      rowWords: plans.reduce((sum, plan) => sum + plan.rowCount, 0),
      partBytes,
      qBytes: positions.length * heads * headDim * 4,
    };
  }

  /** The tokens' positions and each sequence's cache rows where attend_range reads them (places.positions, places.rows). */
  private writeAttentionRows(layout: AttentionLayout, places: Pick<AttentionPlaces, "positions" | "rows">, positions: ArrayLike<number>): void {
    const memory = layout.instance.memory.buffer;
    new Int32Array(memory, places.positions, positions.length).set(positions);
    let rowsAt = places.rows;
    for (const { kv, rowCount } of layout.plans) {
      if (kv.rows) new Int32Array(memory, rowsAt, rowCount).set(kv.rows.subarray(0, rowCount));
      rowsAt += rowCount * 4;
    }
  }

  /** attend_range's parameter block at places.params: the shape, then each sequence's cache, rows and share of the units. */
  private writeAttentionParams(layout: AttentionLayout, places: AttentionPlaces, shape: AttentionShape): void {
    const { heads, kvHeads, headDim, scale } = shape;
    const params = new Int32Array(layout.instance.memory.buffer, places.params, layout.paramWords);
    params.set([places.work, layout.partBytes, heads, kvHeads, headDim, f32Bits(scale), layout.type === "q8_0" ? 1 : 0, shape.window ?? 0, f32Bits(shape.softcap ?? 0), layout.plans.length, layout.blockHeads]);
    let rowsAt = places.rows;
    layout.plans.forEach(({ start, length, kv, cells, rowCount, chunk, firstUnit, mode }, i) => {
      const rowOffset = start * heads * headDim * 4;
      params.set([places.q + rowOffset, kv.keys.byteOffset, kv.values.byteOffset, places.out + rowOffset, places.positions + start * 4, length, mode, chunk, cells, kv.rows ? rowsAt : 0, firstUnit], ATTENTION_HEADER_WORDS + i * ATTENTION_SEGMENT_WORDS);
      rowsAt += rowCount * 4;
    });
  }

  /**
   * RoPE on q and k, K and V stored in each sequence's cache, and their attention, as one run_stages
   * program for up to STAGED_TOKENS tokens over F16 caches: the composition's results and cache rows, bit
   * for bit, in one dispatch instead of two host-side rotations, a store and a dispatch.
   */
  ropeStoreAttend(q: Float32Array, k: Float32Array, v: Float32Array, segments: readonly AttentionSegment[], positions: ArrayLike<number>, shape: AttentionShape, rope: RopeParams): Float32Array | undefined {
    const tokens = positions.length;
    const kvWidth = shape.kvHeads * shape.headDim;
    if (tokens > STAGED_TOKENS || segments.some(({ kv }) => (kv.type ?? "f16") !== "f16")) return undefined;
    const rowsBytes = tokens * kvWidth * 4;
    const angles = tokens * (rope.dims / 2);
    const plan = this.planAttention(segments, positions, shape, 2 * rowsBytes + 2 * angles * 4 + 16 * tokens + programBytes(4) + 32);
    if (!plan) return undefined;
    const kAt = align16(plan.extraAt);
    const vAt = kAt + rowsBytes;
    const cosAt = vAt + rowsBytes;
    const sinAt = cosAt + angles * 4;
    const tableAt = sinAt + angles * 4;
    const heap = new Float32Array(plan.instance.heap.buffer);
    heap.set(q, plan.qAt / 4);
    heap.set(k.subarray(0, tokens * kvWidth), kAt / 4);
    heap.set(v.subarray(0, tokens * kvWidth), vAt / 4);
    this.writeRopeTables(plan.instance, cosAt, sinAt, positions, rope);
    const stages = this.attentionStages(plan.instance, { q: plan.qAt, k: kAt, v: vAt, cos: cosAt, sin: sinAt, table: tableAt, params: plan.params, units: plan.units }, segments, positions, shape, rope);
    this.runStages(plan.bank, align16(tableAt + 16 * tokens), stages, tokens);
    return this.copyOut(heap, plan.outAt, q.length);
  }

  /** RoPE's cos and sin for these positions ([tokens, dims/2] each) at cosAt and sinAt. */
  private writeRopeTables(instance: KernelInstance, cosAt: number, sinAt: number, positions: ArrayLike<number>, rope: RopeParams): void {
    const angles = positions.length * (rope.dims / 2);
    const heap = new Float32Array(instance.heap.buffer);
    const { cos, sin } = this.ropeAngles(positions, rope);
    heap.set(cos.subarray(0, angles), cosAt / 4);
    heap.set(sin.subarray(0, angles), sinAt / 4);
  }

  /**
   * The stages that rotate q and k, multiply q by the query scale where there is one, store each token's K
   * and V row in its sequence's cache (their addresses written at places.table in `instance`, the caches'
   * bank, now: four words a token) and attend; RoPE's tables must be at places.cos and places.sin.
   */
  private attentionStages(instance: KernelInstance, places: StepPlaces, segments: readonly AttentionSegment[], positions: ArrayLike<number>, shape: AttentionShape, rope: RopeParams, queryScale?: number): Stage[] {
    const tokens = positions.length;
    const { heads, kvHeads, headDim } = shape;
    const kvWidth = kvHeads * headDim;
    const table = new Uint32Array(instance.memory.buffer, places.table, 4 * tokens);
    const rowBytes = kvRowHalves(kvWidth, "f16") * 2;
    for (const { start, length, kv } of segments) {
      for (let t = start; t < start + length; t++) {
        const row = kv.rows ? kv.rows[positions[t]] : positions[t];
        table[4 * t] = places.k + t * kvWidth * 4;
        table[4 * t + 1] = kv.keys.byteOffset + row * rowBytes;
        table[4 * t + 2] = places.v + t * kvWidth * 4;
        table[4 * t + 3] = kv.values.byteOffset + row * rowBytes;
      }
    }
    const halfNeox = rope.dims / 2 | (rope.ordering === "neox" ? 1 << 16 : 0);
    const stages: Stage[] = [
      // rope_range: `weights` the cos table, `out` the sin table, `tokens` the rows a token
      { kernel: "rope_range", units: tokens * heads, weights: places.cos, activations: places.q, n: headDim, out: places.sin, outStride: halfNeox, barrier: false, tokensWord: heads },
      { kernel: "rope_range", units: tokens * kvHeads, weights: places.cos, activations: places.k, n: headDim, out: places.sin, outStride: halfNeox, barrier: true, tokensWord: kvHeads },
      { kernel: "store_halves_range", units: 2 * tokens, weights: places.table, activations: 0, n: kvWidth, out: 0, outStride: 0, barrier: true },
      { kernel: "attend_range", units: places.units, weights: places.params, activations: 0, n: 0, out: 0, outStride: 0, barrier: false },
    ];
    if (queryScale !== undefined) {
      // the rotated q times the scale, while the rows are stored
      const elements = tokens * heads * headDim;
      stages.splice(2, 0, { kernel: "scale_range", units: Math.ceil(elements / ELEMENT_UNIT), weights: f32Bits(queryScale), activations: places.q, n: elements, out: 0, outStride: 0, barrier: false });
    }
    return stages;
  }

  /**
   * Decoder layers one after another as one run_stages program, for up to STAGED_LAYER_TOKENS tokens over
   * F16 caches, where every layer's products have batched kernels and it all sits in one bank: one dispatch a
   * pass instead of four a layer and the host's norms, adds and copies between them. The host's part is
   * done for every layer before any runs (run between layers, it ran with the caches cold from each
   * layer's weights: 40 µs a layer where 5 do). Each stage is the kernel of the composed operation, so the
   * result and the cache rows are the composition's, bit for bit.
   */
  decoderLayers(layers: readonly DecoderLayerCall[], x: Float32Array, positions: ArrayLike<number>): Float32Array | undefined {
    const tokens = positions.length;
    if (tokens > STAGED_LAYER_TOKENS || layers.length === 0) return undefined;
    const prepared: PreparedLayer[] = [];
    for (const { weights, segments } of layers) {
      if (segments.some(({ kv }) => (kv.type ?? "f16") !== "f16")) return undefined;
      const layer = this.preparedLayer(weights);
      if (!layer || layer.bank !== (prepared[0] ?? layer).bank) return undefined;
      prepared.push(layer);
    }
    const bank = prepared[0].bank;
    // every layer's sequences are the same tokens over the same rows (a paged table, or none)
    const first = layers[0].segments;
    const sameRows = ({ segments }: DecoderLayerCall): boolean =>
      segments.length === first.length && segments.every(({ start, length, kv }, s) => start === first[s].start && length === first[s].length && kv.rows === first[s].kv.rows);
    if (!layers.every(sameRows)) return undefined;
    const layouts: AttentionLayout[] = [];
    for (const { segments, shape } of layers) {
      const layout = this.attentionLayout(segments, positions, shape);
      if (!layout || layout.bank !== bank) return undefined;
      layouts.push(layout);
    }
    const instance = this.banks[bank];
    const threads = this.threads;
    const d = layers[0].weights.q.cols;
    if (x.length !== tokens * d || layers.some(({ weights }) => weights.q.cols !== d || weights.down.rows !== d)) return undefined;
    // the areas every layer uses in turn, as large as the largest layer needs
    const most = (bytes: (layer: DecoderLayerCall, i: number) => number): number => Math.max(...layers.map(bytes));
    let size = 0;
    const take = (bytes: number): number => {
      const at = size;
      size = align16(size + bytes);
      return at;
    };
    const rowBytes = tokens * d * 4;
    // a normed row is spent (quantized) before its place takes a product: one area for both
    const normed = take(rowBytes);
    const lasting = {
      positions: take(tokens * 4),
      rows: take(layouts[0].rowWords * 4),
      x: take(rowBytes),
      norm: normed,
      product: normed,
      inActs: take(most((_, i) => Math.max(activationBytes(prepared[i].qkv.kernels, d, tokens, threads), activationBytes(prepared[i].gateUp.kernels, d, tokens, threads)))),
    };
    // the attention's areas and the feed-forward part's are never in use at once: they share one stretch
    const shared = size;
    const attentionAreas = {
      q: take(most((_, i) => layouts[i].qBytes)),
      out: take(most((_, i) => layouts[i].qBytes)),
      work: take(threads * most((_, i) => layouts[i].partBytes)),
      k: take(most(({ weights }) => tokens * weights.k.rows * 4)),
      v: take(most(({ weights }) => tokens * weights.v.rows * 4)),
      attendedActs: take(most(({ weights }, i) => activationBytes(prepared[i].output.kernels, weights.output.cols, tokens, threads))),
    };
    const attentionEnd = size;
    size = shared;
    const feedForwardAreas = {
      gate: take(most(({ weights }) => tokens * weights.gate.rows * 4)),
      up: take(most(({ weights }) => tokens * weights.gate.rows * 4)),
      hiddenActs: take(most(({ weights }, i) => activationBytes(prepared[i].down.kernels, weights.down.cols, tokens, threads))),
    };
    size = Math.max(size, attentionEnd);
    const area = { ...lasting, ...attentionAreas, ...feedForwardAreas };
    // each layer's own: its attention parameters and its K and V rows' addresses; RoPE's tables a setting
    const params = layouts.map((layout) => take(layout.paramWords * 4));
    const tables = layers.map(() => take(16 * tokens));
    const ropeTables = new Map<RopeParams, { cos: number; sin: number }>();
    for (const { rope } of layers) {
      if (!ropeTables.has(rope)) ropeTables.set(rope, { cos: take(tokens * (rope.dims / 2) * 4), sin: take(tokens * (rope.dims / 2) * 4) });
    }
    const program = take(programBytes(LAYER_STAGES * layers.length));
    const base = align16(instance.scratch(size + 16));
    const at = (offset: number): number => base + offset;
    const places = { positions: at(area.positions), rows: at(area.rows), q: at(area.q), out: at(area.out), work: at(area.work) };
    this.writeAttentionRows(layouts[0], places, positions);
    for (const [rope, { cos, sin }] of ropeTables) this.writeRopeTables(instance, at(cos), at(sin), positions, rope);
    const stages: Stage[] = [];
    layers.forEach((call, i) => {
      this.writeAttentionParams(layouts[i], { ...places, params: at(params[i]) }, call.shape);
      const rope = ropeTables.get(call.rope) as { cos: number; sin: number };
      const step = { q: places.q, k: at(area.k), v: at(area.v), cos: at(rope.cos), sin: at(rope.sin), table: at(tables[i]), params: at(params[i]), units: layouts[i].units };
      const layerStages = decoderLayerStages(call, prepared[i], this.attentionStages(instance, step, call.segments, positions, call.shape, call.rope, call.weights.queryScale), {
        x: at(area.x), norm: at(area.norm), product: at(area.product), inActs: at(area.inActs), q: places.q, k: step.k, v: step.v, attended: places.out,
        attendedActs: at(area.attendedActs), gate: at(area.gate), up: at(area.up), hiddenActs: at(area.hiddenActs),
      }, tokens);
      if (layerStages.length > LAYER_STAGES) throw new Error(`decoder layer: ${layerStages.length} stages`);
      // the next layer reads this one's output
      if (i < layers.length - 1) layerStages[layerStages.length - 1].barrier = true;
      stages.push(...layerStages);
    });
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(x, at(area.x) / 4);
    this.runStages(bank, at(program), stages, tokens);
    return this.copyOut(heap, at(area.x), tokens * d);
  }

  /** The layer placed for decoderLayers, found once (null: it cannot run there). */
  private preparedLayer(layer: DecoderLayerWeights): PreparedLayer | undefined {
    let prepared = this.preparedLayers.get(layer);
    if (prepared === undefined) this.preparedLayers.set(layer, (prepared = this.prepareLayer(layer) ?? null));
    return prepared ?? undefined;
  }

  /** What decoderLayers needs of each layer, found once: null where the layer cannot run there. */
  private readonly preparedLayers = new WeakMap<DecoderLayerWeights, PreparedLayer | null>();

  /** The layer's products placed in one bank and its gains and biases copied in beside them; undefined where it cannot run as one program. */
  private prepareLayer(layer: DecoderLayerWeights): PreparedLayer | undefined {
    const norms = [layer.attentionNorm, layer.ffnNorm, layer.headNorm, layer.postNorms?.attention, layer.postNorms?.ffn];
    // rms_norm_rows takes epsilon in f32, as the twin does only where it is an f32 value
    if (!norms.every((norm) => norm === undefined || Math.fround(norm.eps) === norm.eps)) return undefined;
    // SiLU needs relaxed SIMD's FMA (as attention does: planAttention checks that) and lengths in fours
    if (layer.activation === "silu" && layer.gate.rows % 4 !== 0) return undefined;
    const qkv = this.stagedProducts([layer.q, layer.k, layer.v]);
    const output = this.stagedProducts([layer.output]);
    const gateUp = this.stagedProducts([layer.gate, layer.up]);
    const down = this.stagedProducts([layer.down]);
    if (!qkv || !output || !gateUp || !down) return undefined;
    const bank = qkv.bank;
    // GELU's table sits in the first bank
    if ([output, gateUp, down].some((p) => p.bank !== bank) || (layer.activation === "gelu" && bank !== 0)) return undefined;
    const resident = (gain: Float32Array, eps: number): ResidentNorm => ({ gainAt: this.residentFloats(bank, gain), epsBits: f32Bits(eps) });
    const { bias, headNorm, postNorms } = layer;
    return {
      qkv,
      output,
      gateUp,
      down,
      bank,
      attentionGain: resident(layer.attentionNorm.gain, layer.attentionNorm.eps),
      ffnGain: resident(layer.ffnNorm.gain, layer.ffnNorm.eps),
      bias: bias && { q: this.residentFloats(bank, bias.q), k: this.residentFloats(bank, bias.k), v: this.residentFloats(bank, bias.v) },
      headNorm: headNorm && { q: resident(headNorm.q, headNorm.eps), k: resident(headNorm.k, headNorm.eps) },
      postNorms: postNorms && { attention: resident(postNorms.attention.gain, postNorms.attention.eps), ffn: resident(postNorms.ffn.gain, postNorms.ffn.eps) },
      geluTableAt: layer.activation === "gelu" ? this.geluTable() : 0,
    };
  }

  /** Weights that share one batched kernel's activation layout, placed for it in one bank; undefined where they cannot. */
  private stagedProducts(ws: readonly Weight[]): StagedProducts | undefined {
    const kernels: BatchedKernel[] = [];
    for (const w of ws) {
      const kernel = BATCHED[w.type];
      if (!kernel || w.rows % kernel.layout.rows !== 0 || kernel.activations !== (kernels[0] ?? kernel).activations) return undefined;
      kernels.push(kernel);
    }
    const placements = ws.map((w, i) => this.repackedCopy(w, kernels[i].layout));
    const bank = placements[0].bank;
    if (placements.some((p) => p.bank !== bank)) return undefined;
    return { ws, kernels, placements, bank };
  }

  /** Float arrays (norm gains, biases) copied into a bank once; their offset there. */
  private residentFloats(bank: number, array: Float32Array): number {
    let placement = this.resident.get(array);
    if (!placement) {
      const at = this.banks[bank].allocate(array.byteLength);
      new Float32Array(this.banks[bank].memory.buffer, at, array.length).set(array);
      this.resident.set(array, (placement = { bank, at }));
    }
    if (placement.bank !== bank) throw new Error("a float array is resident in another bank");
    return placement.at;
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

  /**
   * a += b in SIMD, through the kernels' memory: the copies in and out cost less than V8's element loop
   * (about 2 ns an element, 3× the whole round trip at a decode batch's 16K floats).
   */
  override addInPlace(a: Float32Array, b: Float32Array): void {
    const instance = this.banks[0];
    const at = instance.scratch(2 * a.length * 4);
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(a, at / 4);
    heap.set(b.subarray(0, a.length), at / 4 + a.length);
    instance.addInPlace(at, at + a.length * 4, a.length);
    a.set(heap.subarray(at / 4, at / 4 + a.length));
  }

  /**
   * silu(gate)·up in SIMD where the kernels have the fused multiply-add ggml's exp needs, on this thread:
   * with the inputs just copied in by this thread, splitting them across threads measured slower.
   */
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
    const bytes = gate.length * 4;
    const at = instance.scratch(3 * bytes);
    const heap = new Float32Array(instance.heap.buffer);
    heap.set(gate, at / 4);
    heap.set(up, (at + bytes) / 4);
    this.runGatedActivation(0, "gelu", at, at + bytes, at + 2 * bytes, gate.length);
    return this.copyOut(heap, at + 2 * bytes, gate.length);
  }

  /** out = act(gate)·up, `length` floats at byte offsets of `bank`, split across threads (out may be gate). */
  private runGatedActivation(bank: number, activation: GateActivation, gateAt: number, upAt: number, outAt: number, length: number): void {
    const units = Math.ceil(length / ELEMENT_UNIT);
    const job = { bank, units, activations: gateAt, n: length, out: outAt, tokens: upAt, outStride: 0 };
    if (activation === "gelu") {
      // a table lookup through an F16 rounding an element: worth splitting from a few thousand elements on
      this.pool.run({ ...job, kernel: "gelu_mul_range", work: length * 40, weights: this.geluTable() });
    } else {
      this.pool.run({ ...job, kernel: "silu_mul_range", work: length * 40, weights: 0 });
    }
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

  /**
   * Spares of a megabyte or more go, and back to the system at once: a prompt batch's would otherwise stay
   * resident (tens of MB), while a token's are kept. A collection costs milliseconds; such a pass, seconds.
   */
  endPass(): void {
    if (this.results.release(RELEASED_AFTER_PASS) > 0) collectGarbage();
  }

  /** `length` floats of a kernel's output at byte offset `at`, copied out into a result array. */
  private copyOut(heap: Float32Array, at: number, length: number): Float32Array {
    const out = this.results.take(length);
    out.set(heap.subarray(at / 4, at / 4 + length));
    return out;
  }

  /** Where the GELU table sits in the first bank, once a GeGLU has needed it. */
  private geluTableAt?: number;

  /** The scalar twin's GELU table, copied into the first bank on first use; its offset there. */
  private geluTable(): number {
    if (this.geluTableAt === undefined) {
      this.geluTableAt = this.banks[0].allocate(65536 * 4);
      new Float32Array(this.banks[0].memory.buffer, this.geluTableAt, 65536).set(ggmlGeluTable());
    }
    return this.geluTableAt;
  }

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
    placement = this.place(w, repackedBytes(w, layout));
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

  /**
   * Room for `bytes` of a weight: memory given back in the last bank (a scratch area that outgrew its
   * place while the first pass placed weights after it), else at its top while it stays under the limit,
   * else in a new bank.
   */
  private place(w: Weight, bytes: number): Placement {
    if (bytes > this.bankLimit) throw new RangeError(`${w.name}: ${bytes} bytes do not fit one WebAssembly memory`);
    let bank = this.banks.length - 1;
    const reused = this.banks[bank].reuse(bytes);
    if (reused !== undefined) return { bank, at: reused };
    if (this.banks[bank].used + bytes > this.bankLimit) bank = this.addBank();
    return { bank, at: this.banks[bank].allocate(bytes) };
  }

  private addBank(): number {
    const instance = new KernelInstance();
    this.banks.push(instance);
    return this.pool.addBank(instance);
  }
}

/** An RMSNorm's gain in a bank and its epsilon's f32 bits. */
interface ResidentNorm {
  gainAt: number;
  epsBits: number;
}

/** A decoder layer's products and float arrays, placed for decoderLayers' programs. */
interface PreparedLayer {
  qkv: StagedProducts;
  output: StagedProducts;
  gateUp: StagedProducts;
  down: StagedProducts;
  bank: number;
  attentionGain: ResidentNorm;
  ffnGain: ResidentNorm;
  bias?: { q: number; k: number; v: number };
  headNorm?: { q: ResidentNorm; k: ResidentNorm };
  postNorms?: { attention: ResidentNorm; ffn: ResidentNorm };
  geluTableAt: number;
}

/** Weights of one input for a run_stages program: their batched kernels (one activation layout) and places in one bank. */
interface StagedProducts {
  ws: readonly Weight[];
  kernels: readonly BatchedKernel[];
  placements: readonly Placement[];
  bank: number;
}

/**
 * Stages that quantize [tokens, cols] f32 at `inputAt` into `actsAt` once, then multiply each weight into
 * its own [tokens, rows] output; every thread waits for all the products at the end.
 */
function productStages(products: StagedProducts, inputAt: number, cols: number, tokens: number, actsAt: number, outs: readonly number[]): Stage[] {
  const { quantize, blockSize } = products.kernels[0].activations;
  const stages: Stage[] = [{ kernel: quantize, units: (cols * tokens) / blockSize, weights: 0, activations: inputAt, n: cols, out: actsAt, outStride: 0, barrier: true }];
  products.ws.forEach((w, i) => {
    const kernel = products.kernels[i];
    stages.push({ kernel: kernel.gemm, units: w.rows / kernel.layout.rows, weights: products.placements[i].at, activations: actsAt, n: cols, out: outs[i], outStride: w.rows, barrier: i === products.ws.length - 1 });
  });
  return stages;
}

/**
 * A decoder layer's stages (see decoderLayers), its attention's among them: the residual stream at
 * places.x comes out as the layer's output.
 */
function decoderLayerStages({ weights, shape }: DecoderLayerCall, layer: PreparedLayer, attention: readonly Stage[], places: LayerPlaces, tokens: number): Stage[] {
  const { heads, kvHeads, headDim } = shape;
  const d = weights.q.cols;
  const qWidth = heads * headDim;
  const kvWidth = kvHeads * headDim;
  const { x, norm: normed, product } = places;
  // RMSNorm of `rows` rows of rowWidth (rms_norm_rows: `tokens` carries epsilon's bits)
  const norm = ({ gainAt, epsBits }: ResidentNorm, from: number, into: number, rowWidth: number, rows: number, barrier: boolean): Stage => ({
    kernel: "rms_norm_rows", units: rows, weights: gainAt, activations: from, n: rowWidth, out: into, outStride: 0, barrier, tokensWord: epsBits,
  });
  // element-wise a += b over the tokens' rows of n; `bStride` 0 adds one row to each
  const add = (a: number, b: number, n: number, bStride: number, barrier: boolean): Stage => ({
    kernel: "add_rows_range", units: tokens, weights: b, activations: a, n, out: 0, outStride: 0, barrier, tokensWord: bStride,
  });
  const { bias, headNorm, postNorms } = layer;
  const stages: Stage[] = [norm(layer.attentionGain, x, normed, d, tokens, true), ...productStages(layer.qkv, normed, d, tokens, places.inActs, [places.q, places.k, places.v])];
  if (bias) stages.push(add(places.q, bias.q, qWidth, 0, false), add(places.k, bias.k, kvWidth, 0, false), add(places.v, bias.v, kvWidth, 0, true));
  // each head's row normalised on its own, in place
  if (headNorm) stages.push(norm(headNorm.q, places.q, places.q, headDim, tokens * heads, false), norm(headNorm.k, places.k, places.k, headDim, tokens * kvHeads, true));
  // the products read what attention wrote
  stages.push(...attention.map((stage, i) => (i === attention.length - 1 ? { ...stage, barrier: true } : stage)));
  stages.push(...productStages(layer.output, places.attended, qWidth, tokens, places.attendedActs, [product]));
  if (postNorms) stages.push(norm(postNorms.attention, product, product, d, tokens, true));
  stages.push(
    add(x, product, d, d, true), // residual: h = x + attn(norm(x))
    norm(layer.ffnGain, x, normed, d, tokens, true),
    ...productStages(layer.gateUp, normed, d, tokens, places.inActs, [places.gate, places.up]),
    gatedActivationStage(weights.activation, layer.geluTableAt, places.gate, places.up, tokens * weights.gate.rows),
    ...productStages(layer.down, places.gate, weights.gate.rows, tokens, places.hiddenActs, [product]),
  );
  if (postNorms) stages.push(norm(postNorms.ffn, product, product, d, tokens, true));
  stages.push(add(x, product, d, d, false)); // residual: x = h + ffn(norm(h))
  return stages;
}

/** out = act(gate)·up in place of gate, `elements` floats, then a barrier (gelu_mul_range reads GELU's table at tableAt). */
function gatedActivationStage(activation: GateActivation, tableAt: number, gateAt: number, upAt: number, elements: number): Stage {
  // the element-wise kernels: `tokens` carries up's address, `n` the length
  return { kernel: activation === "gelu" ? "gelu_mul_range" : "silu_mul_range", units: Math.ceil(elements / ELEMENT_UNIT), weights: tableAt, activations: gateAt, n: elements, out: gateAt, outStride: 0, barrier: true, tokensWord: upAt };
}

/** Whether the weights share one kernel and sit back to back in one bank, each repacked right after the one before. */
function adjoining(ws: readonly Weight[], kernels: readonly BatchedKernel[], placements: readonly Placement[]): boolean {
  if (ws.length < 2) return false;
  for (let i = 1; i < ws.length; i++) {
    const previousEnd = placements[i - 1].at + repackedBytes(ws[i - 1], kernels[i - 1].layout);
    if (kernels[i] !== kernels[0] || placements[i].bank !== placements[0].bank || placements[i].at !== previousEnd) return false;
  }
  return true;
}

/** Bytes of a weight in an interleaved layout: its row groups, each a group of blocks. */
function repackedBytes(w: Weight, layout: InterleavedLayout): number {
  return (w.rows / layout.rows) * (w.cols / layout.blockSize) * layout.groupBytesPerBlock;
}

/** Scratch bytes for `tokens` rows of `cols` in the kernels' (shared) activation layout, with their per-thread space. */
function activationBytes(kernels: readonly BatchedKernel[], cols: number, tokens: number, threads: number): number {
  const { blockSize, blockBytes } = kernels[0].activations;
  const threadBytes = Math.max(...kernels.map((k) => k.threadBytesPerBlock ?? 0)) * (cols / blockSize) * threads;
  return ((cols * tokens) / blockSize) * blockBytes + threadBytes;
}

const bitsScratch = new Float32Array(1);
const bitsView = new Int32Array(bitsScratch.buffer);

/** The bits of x rounded to f32, for a float that travels in an i32 slot of a kernel's arguments. */
function f32Bits(x: number): number {
  bitsScratch[0] = x;
  return bitsView[0];
}
