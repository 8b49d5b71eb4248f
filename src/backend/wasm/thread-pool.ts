import { Worker } from "node:worker_threads";
import { KERNEL_NAMES, KernelInstance, KernelName, kernelModule } from "./kernels.js";

/** One worker's control slot: a job sequence number, the last one done, and the job's arguments. */
export const SLOT = { seq: 0, done: 1, kernel: 2, weights: 3, rows: 4, activations: 5, n: 6, out: 7, size: 16 } as const;

/** How long a waiting thread spins before it sleeps in Atomics.wait: dispatch stays in microseconds. */
const SPIN_MS = 0.2;

/** Below this many weights a product is not worth splitting across threads. */
const MIN_PARALLEL_WEIGHTS = 1 << 18;

/**
 * Splits each matrix × vector across the main thread and `threads − 1` workers that share the kernels'
 * memory. Rows are divided evenly; the main thread takes the first share and then waits for the rest.
 */
export class ThreadPool {
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];
  private seq = 0;

  constructor(
    private readonly instance: KernelInstance,
    readonly threads: number,
  ) {
    this.control = new Int32Array(new SharedArrayBuffer(4 * SLOT.size * Math.max(1, threads - 1)));
    for (let i = 0; i < threads - 1; i++) {
      const worker = new Worker(new URL("./kernel-worker.js", import.meta.url), {
        workerData: { module: kernelModule(), memory: instance.memory, control: this.control.buffer, slot: i },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  run(kernel: KernelName, weights: number, rowBytes: number, rows: number, activations: number, n: number, out: number): void {
    const parts = this.workers.length + 1;
    const share = Math.ceil(rows / parts);
    // Small matrices finish before a worker would wake up: keep them on this thread.
    if (parts === 1 || rows < 2 * parts || rows * n < MIN_PARALLEL_WEIGHTS) {
      this.instance.kernels[kernel](weights, rows, activations, n, out);
      return;
    }
    this.dispatch(KERNEL_NAMES.indexOf(kernel), weights, rowBytes, rows, activations, n, out, () =>
      this.instance.kernels[kernel](weights, Math.min(rows, share), activations, n, out),
    );
  }

  /** Posts each worker its share of rows (kernel −1: an empty job), runs `own` here, and waits for all. */
  private dispatch(kernel: number, weights: number, rowBytes: number, rows: number, activations: number, n: number, out: number, own?: () => void): void {
    const share = Math.ceil(rows / (this.workers.length + 1));
    const seq = ++this.seq;
    const c = this.control;
    this.workers.forEach((_, i) => {
      const start = Math.min(rows, (i + 1) * share);
      const end = Math.min(rows, start + share);
      const base = i * SLOT.size;
      c[base + SLOT.kernel] = kernel;
      c[base + SLOT.weights] = weights + start * rowBytes;
      c[base + SLOT.rows] = end - start;
      c[base + SLOT.activations] = activations;
      c[base + SLOT.n] = n;
      c[base + SLOT.out] = out + start * 4;
      Atomics.store(c, base + SLOT.seq, seq);
      Atomics.notify(c, base + SLOT.seq);
    });
    own?.();
    this.workers.forEach((_, i) => waitFor(c, i * SLOT.size + SLOT.done, seq));
  }

  /** Mean time of an empty dispatch to every worker and back, in microseconds. */
  measureDispatch(rounds = 2000): number {
    if (this.workers.length === 0) return 0;
    for (let i = 0; i < rounds; i++) this.dispatch(-1, 0, 0, 0, 0, 0, 0); // wakes and warms the workers
    const started = performance.now();
    for (let i = 0; i < rounds; i++) this.dispatch(-1, 0, 0, 0, 0, 0, 0);
    return ((performance.now() - started) * 1000) / rounds;
  }

  dispose(): void {
    for (const worker of this.workers) void worker.terminate();
    this.workers.length = 0;
  }
}

/** Waits until control[index] reaches `value`: a short spin, then sleeps woken by Atomics.notify. */
export function waitFor(control: Int32Array, index: number, value: number): void {
  const started = performance.now();
  let spins = 0;
  while (Atomics.load(control, index) < value) {
    if (++spins % 256 === 0 && performance.now() - started > SPIN_MS) {
      const seen = Atomics.load(control, index);
      if (seen < value) Atomics.wait(control, index, seen, 50);
    }
  }
}
