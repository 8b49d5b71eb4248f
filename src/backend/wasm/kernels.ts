import { readFileSync } from "node:fs";
import v8 from "node:v8";

/**
 * The kernels that split across threads, in the order workers refer to them by index: matrix × vector
 * (kernels/matvec.ts), the interleaved matrix × matrix ones (kernels/interleaved.ts), float weights'
 * (kernels/float.ts), attention (kernels/attention.ts, whose `weights` is a parameter block), RMSNorm
 * and the activation quantizers for prompt batches, run_stages (kernels/stages.ts, which calls kernels
 * by these indices) and the range kernels of a decode step's RoPE, KV rows and residual adds.
 */
export const KERNEL_NAMES = [
  "matvec_q4_0", "matvec_q5_0", "matvec_q4_1", "matvec_q5_1", "matvec_q2_k", "matvec_q3_k", "matvec_q4_k", "matvec_q5_k", "matvec_q6_k",
  "gemm_q8_0x16", "gemm_q4_0x16", "gemm_q4_kx8", "gemm_q6_kx4",
  "matmul_f32", "matmul_f16", "matmul_bf16",
  "attend_range", "rms_norm_rows", "quantize_q8_k_blocks", "quantize_q8_0_split_blocks", "quantize_q8_0_record_blocks",
  "gelu_mul_range", "softcap_range", "silu_mul_range", "run_stages", "rope_range", "store_halves_range", "add_rows_range", "scale_range",
] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

/** Each kernel's index in KERNEL_NAMES, the number workers and run_stages know it by. */
export const KERNEL_INDEX: Readonly<Record<KernelName, number>> = Object.fromEntries(KERNEL_NAMES.map((name, i) => [name, i])) as Record<KernelName, number>;

/**
 * (weights, first, end, activations, n, out, tokens, outStride, part): the kernel computes units first … end − 1
 * (rows, or groups of rows for the interleaved layouts); pointers are byte offsets into the shared memory.
 * `part` numbers the calling thread (0 the host), for kernels that need scratch space of their own.
 */
export type RangeKernel = (weights: number, first: number, end: number, activations: number, n: number, out: number, tokens: number, outStride: number, part: number) => void;

/** The repack routines of kernels/interleaved.ts and q8_0.ts: standard rows (a multiple of the group) → interleaved groups. */
export const REPACK_NAMES = ["repack_q8_0x16", "repack_q4_0x16", "repack_q4_kx8", "repack_q6_kx4"] as const;
export type RepackName = (typeof REPACK_NAMES)[number];
export type Repack = (src: number, dst: number, rows: number, n: number) => void;

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the most a 32-bit memory can address
const GROWTH_STEP = 64 << 20;
/** The most room a scratch area keeps beyond its largest request so far. */
const SCRATCH_SLACK = 1 << 20;

let compiled: { module: WebAssembly.Module; relaxed: boolean } | undefined;

/**
 * The kernels built with relaxed SIMD (hardware FMA, as ggml uses) where the runtime has it, else the
 * plain SIMD128 build. Node 20 keeps relaxed SIMD behind a V8 flag, which we set before compiling.
 */
export function kernelModule(): WebAssembly.Module {
  return loadKernels().module;
}

export function kernelsUseRelaxedSimd(): boolean {
  return loadKernels().relaxed;
}

function loadKernels(): { module: WebAssembly.Module; relaxed: boolean } {
  if (compiled) return compiled;
  v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  const relaxedBytes = readFileSync(new URL("../../../kernels/matvec-relaxed.wasm", import.meta.url));
  if (process.env.TSLLM_NO_RELAXED_SIMD !== "1" && WebAssembly.validate(relaxedBytes)) {
    compiled = { module: new WebAssembly.Module(relaxedBytes), relaxed: true };
  } else {
    compiled = { module: new WebAssembly.Module(readFileSync(new URL("../../../kernels/matvec.wasm", import.meta.url))), relaxed: false };
  }
  return compiled;
}

/** The next multiple of 16 from `at`: the kernels' v128 operands stay aligned. */
export function align16(at: number): number {
  return Math.ceil(at / 16) * 16;
}

/** RoPE in place on `rows` rows of `headDim` at x: (x, rows, heads, headDim, half, cos, sin, neox); see kernels/rope.ts. */
export type RopeRows = (x: number, rows: number, heads: number, headDim: number, half: number, cos: number, sin: number, neox: boolean) => void;

/** out[i] = silu(gate[i]) · up[i]; pointers into the shared memory, n a multiple of 4. */
export type SiluMul = (gate: number, up: number, out: number, n: number) => void;

/** a[i] += b[i] for n floats; pointers into the shared memory. */
export type AddInPlace = (a: number, b: number, n: number) => void;

export function instantiate(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
): {
  kernels: Record<KernelName, RangeKernel>;
  prepareBias: (activations: number, n: number, shift: number) => void;
  quantizeQ8_0: (src: number, dst: number, n: number) => void;
  quantizeQ8_K: (src: number, dst: number, n: number) => void;
  halvesFromFloats: (src: number, dst: number, n: number) => void;
  roundThroughQ8_0: (x: number, n: number) => void;
  ropeRows: RopeRows;
  repacks: Record<RepackName, Repack>;
  siluMul: SiluMul;
  addInPlace: AddInPlace;
  heapBase: number;
} {
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort: () => {
        throw new Error("WASM kernel abort");
      },
    },
  });
  const exports = instance.exports as Record<string, unknown>;
  const kernels = Object.fromEntries(KERNEL_NAMES.map((name) => [name, exports[name] as RangeKernel])) as Record<KernelName, RangeKernel>;
  return {
    kernels,
    prepareBias: exports.prepare_bias as (activations: number, n: number, shift: number) => void,
    quantizeQ8_0: exports.quantize_q8_0 as (src: number, dst: number, n: number) => void,
    quantizeQ8_K: exports.quantize_q8_k as (src: number, dst: number, n: number) => void,
    halvesFromFloats: exports.halves_from_floats as (src: number, dst: number, n: number) => void,
    roundThroughQ8_0: exports.round_through_q8_0 as (x: number, n: number) => void,
    ropeRows: exports.rope_rows as RopeRows,
    repacks: Object.fromEntries(REPACK_NAMES.map((name) => [name, exports[name] as Repack])) as Record<RepackName, Repack>,
    siluMul: exports.silu_mul as SiluMul,
    addInPlace: exports.add_in_place as AddInPlace,
    heapBase: (exports.heap_base as () => number)(),
  };
}

/**
 * The kernels over one shared memory that the host owns and every worker thread maps. Memory is handed
 * out by a bump allocator; weights are copied in once and stay.
 */
export class KernelInstance {
  readonly memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
  readonly kernels: Record<KernelName, RangeKernel>;
  readonly siluMul: SiluMul;
  readonly addInPlace: AddInPlace;
  /** Writes Q4_0's / Q5_0's per-block bias lanes just past a row of Q8_0 activations (32 bytes a block). */
  readonly prepareBias: (activations: number, n: number, shift: number) => void;
  /** f32 row → Q8_0 blocks, as the scalar twin's Q8_0.quantizeRow. */
  readonly quantizeQ8_0: (src: number, dst: number, n: number) => void;
  /** f32 row → Q8_K blocks, as the scalar twin's Q8_K.quantizeRow. */
  readonly quantizeQ8_K: (src: number, dst: number, n: number) => void;
  /** f32 → F16, as the scalar twin's floatToHalf (KV cache rows). */
  readonly halvesFromFloats: (src: number, dst: number, n: number) => void;
  /** f32 values → the values of their Q8_0 blocks, in place, as the scalar twin's roundQueryForKeys (n a multiple of 32). */
  readonly roundThroughQ8_0: (x: number, n: number) => void;
  readonly ropeRows: RopeRows;
  readonly repacks: Record<RepackName, Repack>;
  private top: number;
  private bytes: Uint8Array;

  constructor() {
    const { kernels, prepareBias, quantizeQ8_0, quantizeQ8_K, halvesFromFloats, roundThroughQ8_0, ropeRows, repacks, siluMul, addInPlace, heapBase } = instantiate(kernelModule(), this.memory);
    this.addInPlace = addInPlace;
    this.halvesFromFloats = halvesFromFloats;
    this.roundThroughQ8_0 = roundThroughQ8_0;
    this.ropeRows = ropeRows;
    this.repacks = repacks;
    this.quantizeQ8_K = quantizeQ8_K;
    this.prepareBias = prepareBias;
    this.quantizeQ8_0 = quantizeQ8_0;
    this.kernels = kernels;
    this.siluMul = siluMul;
    this.top = heapBase;
    this.bytes = new Uint8Array(this.memory.buffer);
  }

  private readonly released: { at: number; size: number }[] = [];

  /**
   * Zeroed memory of `size` bytes that a previous owner gave back, from the first block large enough; the
   * rest of the block stays for later (memory once written stays resident, so it is worth filling).
   */
  reuse(size: number): number | undefined {
    const index = this.released.findIndex((block) => block.size >= size);
    if (index < 0) return undefined;
    const block = this.released[index];
    const taken = align16(size);
    if (block.size - taken >= 4096) this.released[index] = { at: block.at + taken, size: block.size - taken };
    else this.released.splice(index, 1);
    this.heap.fill(0, block.at, block.at + size);
    return block.at;
  }

  /** Gives `size` bytes at `at` back for reuse, joined to released neighbours so that pieces become whole again. */
  release(at: number, size: number): void {
    const blocks = this.released;
    blocks.push({ at, size });
    blocks.sort((a, b) => a.at - b.at);
    for (let i = blocks.length - 1; i > 0; i--) {
      const before = blocks[i - 1];
      if (align16(before.at + before.size) >= blocks[i].at) {
        before.size = Math.max(before.size, blocks[i].at + blocks[i].size - before.at);
        blocks.splice(i, 1);
      }
    }
  }

  /** Reserves `size` bytes aligned to 16 and returns their offset. */
  allocate(size: number): number {
    const at = align16(this.top);
    const end = at + size;
    const current = this.memory.buffer.byteLength;
    if (end > current) {
      // Grow in large steps: fewer, larger mappings (the kernels stream whole matrices through them).
      const wanted = Math.max(end - current, Math.min(current, 1 << 30), GROWTH_STEP);
      const pages = Math.min(Math.ceil(wanted / PAGE), MAX_PAGES - current / PAGE);
      if (current + pages * PAGE < end) throw new RangeError("the model does not fit one 4 GiB WebAssembly memory");
      this.memory.grow(pages);
    }
    this.top = end;
    return at;
  }

  private scratchArea = { at: 0, size: 0 };

  /**
   * A reusable area of at least `size` bytes for one operation's inputs and outputs. A larger one grows
   * in place while it is the last allocation, else moves (the old area is handed back for reuse).
   */
  scratch(size: number): number {
    const needed = size + 16;
    const area = this.scratchArea;
    if (needed > area.size) {
      // some room to grow into (a larger area moves, and what it leaves stays resident until reused)
      const grown = align16(needed + Math.min(needed / 4, SCRATCH_SLACK));
      if (area.size > 0 && area.at + area.size === this.top) {
        this.top = area.at;
        this.scratchArea = { at: this.allocate(grown), size: grown };
      } else {
        if (area.size > 0) this.release(area.at, area.size);
        this.scratchArea = { at: this.reuse(grown) ?? this.allocate(grown), size: grown };
      }
    }
    return this.scratchArea.at;
  }

  /** Bytes handed out so far (the bump allocator's top). */
  get used(): number {
    return this.top;
  }

  /** The whole memory as bytes; a shared memory's buffer is replaced when it grows, so this re-reads it. */
  get heap(): Uint8Array {
    if (this.bytes.byteLength !== this.memory.buffer.byteLength) this.bytes = new Uint8Array(this.memory.buffer);
    return this.bytes;
  }
}
