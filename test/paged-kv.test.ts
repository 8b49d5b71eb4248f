import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HEAP_STORAGE } from "../src/kv/kv-cache.js";
import { BLOCK_TOKENS, blockHash, PagedKvPool, PagedSequence } from "../src/kv/paged.js";

describe("the paged KV pool", () => {
  it("shares registered prefix blocks by count, keeps released ones for reuse, and evicts the least recently used", () => {
    const pool = new PagedKvPool(1, 8, 4, HEAP_STORAGE);
    const tokens = Array.from({ length: 3 * BLOCK_TOKENS }, (_, i) => i);
    const a = new PagedSequence(pool, 64);
    assert.ok(a.reserve(2 * BLOCK_TOKENS));
    a.length = 2 * BLOCK_TOKENS;
    a.registerFull(tokens);
    assert.equal(a.hashes.length, 2);
    assert.equal(pool.used, 2);
    // a second sequence with the same first block takes it: one more reference, no new block
    const first = pool.take(blockHash("", tokens.slice(0, BLOCK_TOKENS)));
    assert.equal(first, a.blocks[0]);
    assert.equal(pool.used, 2);
    const [b0, b1] = a.blocks;
    a.release();
    assert.equal(pool.used, 1, "the shared block is still held");
    assert.equal(pool.cached, 1, "the other stays cached");
    pool.release(first as number);
    assert.equal(pool.cached, 2);
    // four allocations: the two empty blocks first, then the cached ones, least recently released first
    const taken = [pool.allocate(), pool.allocate(), pool.allocate(), pool.allocate()];
    assert.ok(!taken.slice(0, 2).includes(b0) && !taken.slice(0, 2).includes(b1));
    assert.deepEqual(taken.slice(2), [b1, b0]);
    assert.equal(pool.allocate(), undefined, "the pool is empty");
    assert.equal(pool.take(blockHash("", tokens.slice(0, BLOCK_TOKENS))), undefined, "evicted blocks forget their prefix");
  });

  it("maps positions to rows through the block table", () => {
    const pool = new PagedKvPool(2, 4, 3, HEAP_STORAGE);
    const s = new PagedSequence(pool, 48);
    pool.allocate(); // block 0 is taken by someone else
    assert.ok(s.reserve(20));
    const rows = s.layer(1).rows as Int32Array;
    assert.equal(rows[0], s.blocks[0] * BLOCK_TOKENS);
    assert.equal(rows[17], s.blocks[1] * BLOCK_TOKENS + 1);
    assert.equal(s.reserve(40), false, "only three blocks in all");
  });
});
