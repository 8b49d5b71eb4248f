import { HalfStorage, KvType, LayerKv } from "../backend/backend.js";
import { kvRowHalves } from "../backend/kv-format.js";

export const HEAP_STORAGE: HalfStorage = {
  allocate: (length) => new Uint16Array(length),
  release: () => {},
};

/** What a forward pass needs of a sequence's cache: how much it holds, how much it may, and its layers. */
export interface KvView {
  /** Positions 0..length-1 hold valid entries. */
  length: number;
  readonly capacity: number;
  layer(index: number): LayerKv;
}

/**
 * The model-facing KV cache: one contiguous region per layer, [capacity, kvWidth] for K and V, in F16
 * or Q8_0 rows.
 * Models only store and read the current layer; the engine owns its lifetime.
 */
export class KvCache implements KvView {
  private readonly layers: LayerKv[];
  /** Positions 0..length-1 hold valid entries. */
  length = 0;

  constructor(
    readonly layerCount: number,
    readonly kvWidth: number,
    readonly capacity: number,
    /** Where the storage lives: a backend may place it in memory its kernels read. */
    private readonly storage: HalfStorage = HEAP_STORAGE,
    readonly type: KvType = "f16",
  ) {
    const halves = capacity * kvRowHalves(kvWidth, type);
    this.layers = Array.from({ length: layerCount }, () => ({ keys: storage.allocate(halves), values: storage.allocate(halves), type }));
  }

  /** Returns the storage; the cache is unusable afterwards. */
  dispose(): void {
    for (const layer of this.layers) {
      this.storage.release(layer.keys);
      this.storage.release(layer.values);
    }
    this.layers.length = 0;
  }

  layer(index: number): LayerKv {
    return this.layers[index];
  }

  /** Forgets positions from `length` on, so that a new continuation can overwrite them. */
  truncate(length: number): void {
    this.length = Math.min(this.length, Math.max(0, length));
  }
}
