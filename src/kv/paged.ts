import { createHash } from "node:crypto";
import { HalfStorage, KvType, LayerKv } from "../backend/backend.js";
import { kvRowHalves } from "../backend/kv-format.js";
import { KvView } from "./kv-cache.js";

/** Tokens per block, vLLM's default. */
export const BLOCK_TOKENS = 16;

/** The chained hash of a full block: it names the block's tokens and everything before them. */
export function blockHash(previous: string, tokens: readonly number[]): string {
  return createHash("sha1").update(previous).update(Int32Array.from(tokens)).digest("hex");
}

/**
 * One pool of KV blocks for every sequence of a model: per layer, one arena (F16 or Q8_0 rows) of
 * blocks × BLOCK_TOKENS rows. Blocks are reference-counted; full blocks are registered under the chained
 * hash of their tokens, so a later sequence with the same prefix takes them instead of computing them.
 * A released block that carries a hash stays reusable until it is evicted, least recently used first.
 */
export class PagedKvPool {
  readonly layers: { keys: Uint16Array; values: Uint16Array }[];
  private readonly refs: Int32Array;
  private readonly hashes: (string | undefined)[];
  private readonly byHash = new Map<string, number>();
  private readonly empty: number[] = [];
  /** Released blocks that still hold a registered prefix, least recently used first. */
  private readonly reusable = new Set<number>();

  constructor(
    layerCount: number,
    readonly kvWidth: number,
    readonly blocks: number,
    private readonly storage: HalfStorage,
    readonly type: KvType = "f16",
  ) {
    const halves = blocks * BLOCK_TOKENS * kvRowHalves(kvWidth, type);
    this.layers = Array.from({ length: layerCount }, () => ({ keys: storage.allocate(halves), values: storage.allocate(halves) }));
    this.refs = new Int32Array(blocks);
    this.hashes = new Array<string | undefined>(blocks);
    for (let b = blocks - 1; b >= 0; b--) this.empty.push(b);
  }

  /** Blocks a new sequence could take now: empty ones and evictable cached ones. */
  get available(): number {
    return this.empty.length + this.reusable.size;
  }

  get used(): number {
    return this.blocks - this.available;
  }

  get cached(): number {
    return this.reusable.size;
  }

  /** A block for new tokens: an empty one, else the least recently used cached one (its hash forgotten). */
  allocate(): number | undefined {
    let block = this.empty.pop();
    if (block === undefined) {
      const oldest = this.reusable.values().next();
      if (oldest.done) return undefined;
      block = oldest.value;
      this.reusable.delete(block);
      this.forget(block);
    }
    this.refs[block] = 1;
    return block;
  }

  /** The cached block holding this prefix, taken (its count raised), if there is one. */
  take(hash: string): number | undefined {
    const block = this.byHash.get(hash);
    if (block === undefined) return undefined;
    if (this.refs[block] === 0) this.reusable.delete(block);
    this.refs[block]++;
    return block;
  }

  /** A full block's tokens are now its hash's; the first block registered for a hash keeps it. */
  register(block: number, hash: string): void {
    if (this.hashes[block] !== undefined || this.byHash.has(hash)) return;
    this.hashes[block] = hash;
    this.byHash.set(hash, block);
  }

  release(block: number): void {
    if (--this.refs[block] > 0) return;
    if (this.hashes[block] !== undefined) this.reusable.add(block);
    else this.empty.push(block);
  }

  private forget(block: number): void {
    const hash = this.hashes[block];
    if (hash !== undefined && this.byHash.get(hash) === block) this.byHash.delete(hash);
    this.hashes[block] = undefined;
  }

  dispose(): void {
    for (const layer of this.layers) {
      this.storage.release(layer.keys);
      this.storage.release(layer.values);
    }
  }
}

/** One sequence's view of the pool: its block table, and the rows it implies for each position. */
export class PagedSequence implements KvView {
  readonly blocks: number[] = [];
  length = 0;
  private readonly rows: Int32Array;
  /** Hashes of the sequence's full blocks so far, in order. */
  readonly hashes: string[] = [];

  constructor(
    private readonly pool: PagedKvPool,
    readonly capacity: number,
  ) {
    this.rows = new Int32Array(Math.ceil(capacity / BLOCK_TOKENS) * BLOCK_TOKENS);
  }

  layer(index: number): LayerKv {
    const { keys, values } = this.pool.layers[index];
    return { keys, values, rows: this.rows, type: this.pool.type };
  }

  /** Appends a block (taken from the cache or newly allocated) to the table. */
  push(block: number): void {
    const base = block * BLOCK_TOKENS;
    const at = this.blocks.length * BLOCK_TOKENS;
    for (let i = 0; i < BLOCK_TOKENS; i++) this.rows[at + i] = base + i;
    this.blocks.push(block);
  }

  /** Makes room for `more` tokens past `length`; false when the pool has no block left. */
  reserve(more: number): boolean {
    while (this.blocks.length * BLOCK_TOKENS < this.length + more) {
      const block = this.pool.allocate();
      if (block === undefined) return false;
      this.push(block);
    }
    return true;
  }

  /** Registers every block that `tokens` (the sequence so far) have filled since the last call. */
  registerFull(tokens: readonly number[]): void {
    const full = Math.min(Math.floor(this.length / BLOCK_TOKENS), this.blocks.length);
    for (let b = this.hashes.length; b < full; b++) {
      const hash = blockHash(this.hashes[b - 1] ?? "", tokens.slice(b * BLOCK_TOKENS, (b + 1) * BLOCK_TOKENS));
      this.hashes.push(hash);
      this.pool.register(this.blocks[b], hash);
    }
  }

  release(): void {
    for (const block of this.blocks) this.pool.release(block);
    this.blocks.length = 0;
    this.length = 0;
  }
}
