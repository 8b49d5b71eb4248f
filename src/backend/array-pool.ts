/**
 * Result arrays handed back by the model once it has read them (Backend.recycle), kept by length for the
 * next results of that length. A prompt batch's layers then reuse one layer's worth of arrays, as ggml
 * reuses its compute buffer, instead of leaving megabytes of garbage a layer for the collector (which a
 * synchronous forward pass gives no chance to run, so the process's resident memory grows by it).
 */
export class ArrayPool {
  private readonly spare = new Map<number, Float32Array[]>();

  constructor(
    /** Shorter arrays are left to the collector: they cost little, and a pool of them would be large. */
    private readonly minLength = 256,
    private readonly perLength = 8,
  ) {}

  /** An array of `length` floats for a result: a recycled one (its old contents still in it) or a new one. */
  take(length: number): Float32Array {
    return this.spare.get(length)?.pop() ?? new Float32Array(length);
  }

  /** Lets go of the spare arrays of `minLength` floats or more (large ones live in their own mappings); how many there were. */
  release(minLength: number): number {
    let released = 0;
    for (const [length, list] of this.spare) {
      if (length < minLength) continue;
      released += list.length;
      this.spare.delete(length);
    }
    return released;
  }

  /** Keeps whole, unshared arrays for reuse; views (of another array or of shared memory) are ignored. */
  give(arrays: readonly Float32Array[]): void {
    for (const array of arrays) {
      if (array.length < this.minLength || array.byteOffset !== 0 || array.byteLength !== array.buffer.byteLength || !(array.buffer instanceof ArrayBuffer)) continue;
      let list = this.spare.get(array.length);
      if (!list) this.spare.set(array.length, (list = []));
      if (list.length < this.perLength && !list.includes(array)) list.push(array);
    }
  }
}
