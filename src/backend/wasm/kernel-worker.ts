import { workerData } from "node:worker_threads";
import { instantiate, KERNEL_NAMES } from "./kernels.js";
import { SLOT, waitFor, WORKER_SPIN_MS } from "./thread-pool.js";

/** A kernel thread: maps the shared memory, then runs the row ranges the main thread posts to its slot. */
const data = workerData as { module: WebAssembly.Module; memory: WebAssembly.Memory; control: SharedArrayBuffer; slot: number };
const { kernels } = instantiate(data.module, data.memory);
const control = new Int32Array(data.control);
const base = data.slot * SLOT.size;
for (let done = 0; ; ) {
  waitFor(control, base + SLOT.seq, done + 1, WORKER_SPIN_MS);
  const seq = Atomics.load(control, base + SLOT.seq);
  const index = control[base + SLOT.kernel];
  if (index >= 0) {
    const kernel = kernels[KERNEL_NAMES[index]];
    kernel(
      control[base + SLOT.weights], control[base + SLOT.first], control[base + SLOT.end], control[base + SLOT.activations],
      control[base + SLOT.n], control[base + SLOT.out], control[base + SLOT.tokens], control[base + SLOT.outStride], data.slot + 1,
    );
  }
  done = seq;
  Atomics.store(control, base + SLOT.done, seq);
  Atomics.notify(control, base + SLOT.done);
}
