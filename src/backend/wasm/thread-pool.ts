import { Worker } from "node:worker_threads";
import { KERNEL_INDEX, KernelInstance, KernelName, kernelModule } from "./kernels.js";

/**
 * One worker's control slot: a job sequence number, the last one done, the kernel and its arguments (its
 * units and the units a chunk). After the workers' slots, one shared word: the next chunk to claim.
 */
export const SLOT = { seq: 0, done: 1, kernel: 2, weights: 3, chunk: 4, units: 5, activations: 6, n: 7, out: 8, tokens: 9, outStride: 10, bank: 11, together: 12, size: 16 } as const;

/** Chunks a thread's share of units is cut into, so that a thread slowed by others on the machine does less. */
const CHUNKS_PER_THREAD = 8;

/**
 * How long a waiting thread spins before it sleeps in Atomics.wait: dispatch stays in microseconds. The
 * main thread waits only for the rest of a product; workers wait across the host's own work between
 * products (norms, attention), which lasts milliseconds, and waking from Atomics.wait costs tens of µs.
 */
export const MAIN_SPIN_MS = 0.2;
export const WORKER_SPIN_MS = 20;

/** Below this many multiply-adds a product is not worth splitting across threads. */
const MIN_PARALLEL_WORK = 1 << 18;

/** A kernel call over units 0 … units − 1, `work` multiply-adds in all (see RangeKernel for the rest). */
export interface RangeJob {
  kernel: KernelName;
  /** The memory (see ThreadPool.addBank) that every pointer of the job points into. */
  bank: number;
  units: number;
  work: number;
  weights: number;
  activations: number;
  n: number;
  out: number;
  tokens: number;
  outStride: number;
}

/**
 * Splits each kernel call across the main thread and `threads − 1` workers that share the kernels'
 * memories ("banks": one 32-bit memory holds 4 GiB at most, so a large model spans several). Units are
 * cut into chunks that every thread, the main one included, claims in turn until none is left: on a
 * shared machine one core often runs slower than the other, and an even split waits for the slower one.
 */
export class ThreadPool {
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly banks: KernelInstance[] = [];
  private seq = 0;

  constructor(
    first: KernelInstance,
    readonly threads: number,
  ) {
    this.banks.push(first);
    this.control = new Int32Array(new SharedArrayBuffer(4 * (SLOT.size * Math.max(1, threads - 1) + 1)));
    for (let i = 0; i < threads - 1; i++) {
      const worker = new Worker(new URL("./kernel-worker.js", import.meta.url), {
        workerData: { module: kernelModule(), memory: first.memory, control: this.control.buffer, slot: i },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** Makes another memory known to every worker; jobs name it by the returned bank number. */
  addBank(instance: KernelInstance): number {
    this.banks.push(instance);
    // Workers pick this up synchronously (receiveMessageOnPort) when a job first names the bank.
    for (const worker of this.workers) worker.postMessage({ memory: instance.memory });
    return this.banks.length - 1;
  }

  run(job: RangeJob): void {
    const parts = this.workers.length + 1;
    const kernel = this.banks[job.bank].kernels[job.kernel];
    const call = (first: number, end: number): void => kernel(job.weights, first, end, job.activations, job.n, job.out, job.tokens, job.outStride, 0);
    // Small products finish before a worker would wake up: keep them on this thread, as a job of one unit.
    // Two units are worth splitting: a token's attention over a long context can be two blocks of heads.
    if (parts === 1 || job.units < 2 || job.work < MIN_PARALLEL_WORK) {
      call(0, job.units);
      return;
    }
    const chunk = chunkOf(job.units, parts);
    this.dispatch(KERNEL_INDEX[job.kernel], job, chunk, () => claimChunks(this.control, job.units, chunk, call));
  }

  /**
   * Calls `kernel` once on every thread at the same time, thread i (0 here) as (weights, i, threads, …):
   * for run_stages, which shares out its own work and whose barriers wait for every thread.
   */
  runTogether(kernel: KernelName, bank: number, weights: number): void {
    const threads = this.workers.length + 1;
    const call = this.banks[bank].kernels[kernel];
    const job = { bank, units: threads, weights, activations: 0, n: 0, out: 0, tokens: 0, outStride: 0 };
    if (threads === 1) call(weights, 0, 1, 0, 0, 0, 0, 0, 0);
    else this.dispatch(KERNEL_INDEX[kernel], job, 1, () => call(weights, 0, threads, 0, 0, 0, 0, 0, 0), true);
  }

  /** The threads this pool runs a job on, this one included. */
  get parts(): number {
    return this.workers.length + 1;
  }

  /** Posts the job to every worker (kernel −1: an empty job), runs `own` here, and waits for all. */
  private dispatch(kernel: number, job: Omit<RangeJob, "kernel" | "work">, chunk: number, own?: () => void, together = false): void {
    const seq = ++this.seq;
    const c = this.control;
    Atomics.store(c, c.length - 1, 0);
    this.workers.forEach((_, i) => {
      const base = i * SLOT.size;
      c[base + SLOT.kernel] = kernel;
      c[base + SLOT.weights] = job.weights;
      c[base + SLOT.chunk] = chunk;
      c[base + SLOT.units] = job.units;
      c[base + SLOT.activations] = job.activations;
      c[base + SLOT.n] = job.n;
      c[base + SLOT.out] = job.out;
      c[base + SLOT.tokens] = job.tokens;
      c[base + SLOT.outStride] = job.outStride;
      c[base + SLOT.bank] = job.bank;
      c[base + SLOT.together] = together ? 1 : 0;
      Atomics.store(c, base + SLOT.seq, seq);
      Atomics.notify(c, base + SLOT.seq);
    });
    own?.();
    this.workers.forEach((_, i) => waitFor(c, i * SLOT.size + SLOT.done, seq, MAIN_SPIN_MS));
  }

  /**
   * An empty dispatch to every worker and back, in microseconds: the median round and the mean. On a
   * shared machine one descheduled round can weigh more than the other 1999 together, so both are told.
   */
  measureDispatch(rounds = 2000): DispatchTiming {
    if (this.workers.length === 0) return { median: 0, mean: 0 };
    const empty = { bank: 0, units: 0, weights: 0, activations: 0, n: 0, out: 0, tokens: 0, outStride: 0 };
    for (let i = 0; i < rounds; i++) this.dispatch(-1, empty, 1); // wakes and warms the workers
    const times = new Float64Array(rounds);
    for (let i = 0; i < rounds; i++) {
      const started = performance.now();
      this.dispatch(-1, empty, 1);
      times[i] = (performance.now() - started) * 1000;
    }
    const total = times.reduce((sum, t) => sum + t, 0);
    return { median: times.sort()[rounds >> 1], mean: total / rounds };
  }

  dispose(): void {
    for (const worker of this.workers) void worker.terminate();
    this.workers.length = 0;
  }
}

/** Round trips of measureDispatch, in microseconds. */
export interface DispatchTiming {
  median: number;
  mean: number;
}

/** Waits until control[index] reaches `value`: a short spin, then sleeps woken by Atomics.notify. */
export function waitFor(control: Int32Array, index: number, value: number, spinMs: number): void {
  const started = performance.now();
  let spins = 0;
  while (Atomics.load(control, index) < value) {
    if (++spins % 256 === 0 && performance.now() - started > spinMs) {
      const seen = Atomics.load(control, index);
      if (seen < value) Atomics.wait(control, index, seen, 50);
    }
  }
}

/**
 * The units a claim takes when `parts` threads share `units`: about CHUNKS_PER_THREAD claims a thread, in
 * multiples of four units where there are many (the interleaved kernels take row groups in fours).
 */
export function chunkOf(units: number, parts: number): number {
  const even = Math.ceil(units / (parts * CHUNKS_PER_THREAD));
  return units >= 16 * parts ? Math.ceil(even / 4) * 4 : even;
}

/** Claims chunks of `chunk` units from the shared counter (the control array's last word) and runs them until none is left. */
export function claimChunks(control: Int32Array, units: number, chunk: number, call: (first: number, end: number) => void): void {
  for (;;) {
    const first = Atomics.add(control, control.length - 1, 1) * chunk;
    if (first >= units) return;
    call(first, Math.min(units, first + chunk));
  }
}
