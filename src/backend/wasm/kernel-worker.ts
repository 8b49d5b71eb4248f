import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { instantiate, KERNEL_NAMES, RangeKernel } from "./kernels.js";
import { claimChunks, SLOT, waitFor, WORKER_SPIN_MS } from "./thread-pool.js";

/** A kernel thread: maps the shared memories, then runs the row ranges the main thread posts to its slot. */
const data = workerData as { module: WebAssembly.Module; memory: WebAssembly.Memory; control: SharedArrayBuffer; slot: number };
const banks: Record<string, RangeKernel>[] = [instantiate(data.module, data.memory).kernels];
const control = new Int32Array(data.control);
const base = data.slot * SLOT.size;

/** The kernels over bank `bank`, mapping the memories the host has posted since (ThreadPool.addBank). */
function kernelsOf(bank: number): Record<string, RangeKernel> {
  while (banks.length <= bank) {
    const message = parentPort && receiveMessageOnPort(parentPort);
    if (!message) throw new Error(`kernel worker: bank ${bank} was never posted`);
    banks.push(instantiate(data.module, (message.message as { memory: WebAssembly.Memory }).memory).kernels);
  }
  return banks[bank];
}

for (let done = 0; ; ) {
  waitFor(control, base + SLOT.seq, done + 1, WORKER_SPIN_MS);
  const seq = Atomics.load(control, base + SLOT.seq);
  const index = control[base + SLOT.kernel];
  if (index >= 0) {
    const kernel = kernelsOf(control[base + SLOT.bank])[KERNEL_NAMES[index]];
    const weights = control[base + SLOT.weights];
    const activations = control[base + SLOT.activations];
    const n = control[base + SLOT.n];
    const out = control[base + SLOT.out];
    const tokens = control[base + SLOT.tokens];
    const outStride = control[base + SLOT.outStride];
    if (control[base + SLOT.together]) kernel(weights, data.slot + 1, control[base + SLOT.units], activations, n, out, tokens, outStride, data.slot + 1);
    else {
      claimChunks(control, control[base + SLOT.units], control[base + SLOT.chunk], (first, end) =>
        kernel(weights, first, end, activations, n, out, tokens, outStride, data.slot + 1),
      );
    }
  }
  done = seq;
  Atomics.store(control, base + SLOT.done, seq);
  Atomics.notify(control, base + SLOT.done);
}
