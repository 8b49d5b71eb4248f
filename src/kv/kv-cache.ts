import { LayerKv } from "../backend/backend.js";

/**
 * The model-facing KV cache: one contiguous F16 region per layer, [capacity, kvWidth] for K and V.
 * Models only store and read the current layer; the engine owns its lifetime.
 */
export class KvCache {
  private readonly layers: LayerKv[];
  /** Positions 0..length-1 hold valid entries. */
  length = 0;

  constructor(
    readonly layerCount: number,
    readonly kvWidth: number,
    readonly capacity: number,
  ) {
    this.layers = Array.from({ length: layerCount }, () => ({
      keys: new Uint16Array(capacity * kvWidth),
      values: new Uint16Array(capacity * kvWidth),
    }));
  }

  layer(index: number): LayerKv {
    return this.layers[index];
  }

  /** Forgets positions from `length` on, so that a new continuation can overwrite them. */
  truncate(length: number): void {
    this.length = Math.min(this.length, Math.max(0, length));
  }
}
