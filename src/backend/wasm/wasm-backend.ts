import { availableParallelism } from "node:os";
import { GgmlType } from "../../gguf/ggml-types.js";
import { quantFormat, rowBytes } from "../../quant/index.js";
import { Weight } from "../../tensor/weight.js";
import { ScalarBackend } from "../scalar/scalar-backend.js";
import { KernelInstance, KernelName, kernelsUseRelaxedSimd } from "./kernels.js";
import { ThreadPool } from "./thread-pool.js";

const KERNELS: Partial<Record<GgmlType, KernelName>> = {
  [GgmlType.Q8_0]: "matvec_q8_0",
  [GgmlType.Q4_0]: "matvec_q4_0",
  [GgmlType.Q4_K]: "matvec_q4_k",
  [GgmlType.Q6_K]: "matvec_q6_k",
};

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
    const kernel = KERNELS[w.type];
    if (!kernel) return super.matmul(w, x, tokens);
    const format = quantFormat(w.type);
    const activation = quantFormat(format.dotType);
    const cols = w.cols;
    const rows = w.rows;
    const aRow = rowBytes(activation, cols);
    const weights = this.residentCopy(w);
    const activations = this.scratchSpace(aRow + rows * 4);
    const outAt = activations + Math.ceil(aRow / 16) * 16;
    const out = new Float32Array(tokens * rows);
    for (let t = 0; t < tokens; t++) {
      activation.quantizeRow(x, t * cols, this.instance.heap, activations, cols);
      this.pool.run(kernel, weights, rowBytes(format, cols), rows, activations, cols, outAt);
      out.set(new Float32Array(this.instance.heap.buffer, outAt, rows), t * rows);
    }
    return out;
  }

  /** Mean empty dispatch round trip to the worker threads, in microseconds. */
  measureDispatch(): number {
    return this.pool.measureDispatch();
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

  private scratchSpace(size: number): number {
    const needed = size + 16;
    if (needed > this.scratch.size) this.scratch = { at: this.instance.allocate(needed * 2), size: needed * 2 };
    return this.scratch.at;
  }
}
