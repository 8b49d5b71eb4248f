import { readFileSync } from "node:fs";

/** The exports of kernels/matvec.ts. Pointers are byte offsets into the shared memory. */
interface KernelExports {
  matvec_q8_0(weights: number, rows: number, activations: number, n: number, out: number): void;
  matvec_q4_0(weights: number, rows: number, activations: number, n: number, out: number): void;
  matvec_q4_k(weights: number, rows: number, activations: number, n: number, out: number): void;
  matvec_q6_k(weights: number, rows: number, activations: number, n: number, out: number): void;
  heap_base(): number;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the most a 32-bit memory can address

/**
 * One instance of the WASM kernels over a memory the host owns. Memory is handed out by a bump
 * allocator; weights are copied in once and stay.
 */
export class KernelInstance {
  private top: number;
  private bytes: Uint8Array;

  private constructor(
    readonly memory: WebAssembly.Memory,
    readonly kernels: KernelExports,
  ) {
    this.top = kernels.heap_base();
    this.bytes = new Uint8Array(memory.buffer);
  }

  static create(): KernelInstance {
    const binary = readFileSync(new URL("../../../kernels/matvec.wasm", import.meta.url));
    const memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(binary), {
      env: {
        memory,
        abort: () => {
          throw new Error("WASM kernel abort");
        },
      },
    });
    return new KernelInstance(memory, instance.exports as unknown as KernelExports);
  }

  /** Reserves `size` bytes aligned to 16 and returns their offset. */
  allocate(size: number): number {
    const at = Math.ceil(this.top / 16) * 16;
    const end = at + size;
    if (end > this.memory.buffer.byteLength) {
      const pages = Math.ceil((end - this.memory.buffer.byteLength) / PAGE);
      if (this.memory.buffer.byteLength / PAGE + pages > MAX_PAGES) throw new RangeError("the model does not fit one 4 GiB WebAssembly memory");
      this.memory.grow(pages);
      this.bytes = new Uint8Array(this.memory.buffer);
    }
    this.top = end;
    return at;
  }

  /** The whole memory as bytes (re-read after every allocation: growth replaces the buffer). */
  get heap(): Uint8Array {
    return this.bytes;
  }
}
