// Attention of query tokens over the KV cache (F16, or Q8_0 blocks), bit-identical to the scalar twin
// (ScalarBackend.attention): ggml's vec_dot order for single tokens (32 lanes, reduced pairwise) or
// tinyBLAS's order for batches (8 lanes, hsum), its vectorised exp in the softmax, and, with an F16
// cache, q and the probabilities rounded to F16 before they meet K and V. Needs relaxed SIMD's fused
// multiply-add.

import { expf4 } from "./expf";
import { roundThroughHalf4 } from "./half";
import { halves4, halvesScaledDown4, hsum8, scaledQuarter, TWO_TO_112, widenHalves } from "./simd";
import { tanh4 } from "./tanh";

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * Half of GGML_F32_VEC_REDUCE's tree over vec_dot's eight accumulators, (a_f + a_f+4) + (a_f+2 + a_f+6), f
 * = 0 or 1, with a_i the sum over every 32 of the `bytes` of q·k in lanes 4i … 4i + 3 (fused, in order).
 * Four accumulators a pass: with all eight and their operands live at once, V8 kept one on the stack and
 * its chain went through memory (A/B, same outputs: 1.18–1.20× per dot at 64 to 256 dimensions).
 * The key row comes as `keys` (a constant where inlined) says.
 */
// @ts-ignore: decorator
@inline function halfTree(q: usize, k: usize, bytes: usize, f: usize, kh: usize, keys: i32): v128 {
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  for (let i: usize = f << 4; i < bytes; i += 128) {
    a = madd(v128.load(q + i), keyQuad(k + i, kh + (i >> 1), keys), a);
    b = madd(v128.load(q + i, 64), keyQuad(k + i + 64, kh + (i >> 1) + 32, keys), b);
    c = madd(v128.load(q + i, 32), keyQuad(k + i + 32, kh + (i >> 1) + 16, keys), c);
    d = madd(v128.load(q + i, 96), keyQuad(k + i + 96, kh + (i >> 1) + 48, keys), d);
  }
  return f32x4.add(f32x4.add(a, b), f32x4.add(c, d));
}

/**
 * How a dot product meets its key row:
 * - WIDE: already widened to f32, at k;
 * - WIDENING: still F16 at kh; each four values are widened, stored at k (the row's f32 copy, where the
 *   group's later query heads read it) and used at once;
 * - DIRECT: still F16 at kh, and no other head reads it (attendLoneHeads): each four values are only
 *   scaled down by 2^112 (halvesScaledDown4), and the query comes scaled up by as much (roundQuery), so
 *   each product is the same, exactly.
 */
const WIDE = 0, WIDENING = 1, DIRECT = 2;

/** Four key values, from k or kh as `keys` says. */
// @ts-ignore: decorator
@inline function keyQuad(k: usize, kh: usize, keys: i32): v128 {
  if (keys == WIDE) return v128.load(k);
  if (keys == DIRECT) return halvesScaledDown4(kh);
  const v = halves4(kh);
  v128.store(k, v);
  return v;
}

/** vec_dot's last steps over the four lanes of the two half trees' sum: (l0 + l1) + (l2 + l3). */
// @ts-ignore: decorator
@inline function laneSum(d: v128): f32 {
  return (f32x4.extract_lane(d, 0) + f32x4.extract_lane(d, 1)) + (f32x4.extract_lane(d, 2) + f32x4.extract_lane(d, 3));
}

/** q (f32, n values) · a key row already widened to f32, in vec_dot (batched = 0) or tinyBLAS (batched = 1) order. */
// @ts-ignore: decorator
@inline function dotRow(q: usize, k: usize, n: i32, batched: i32): f32 {
  if (batched) {
    let lo = f32x4.splat(0);
    let hi = f32x4.splat(0);
    for (let i = 0; i < n; i += 8) {
      const at = <usize>i << 2;
      lo = madd(v128.load(q + at), v128.load(k + at), lo);
      hi = madd(v128.load(q + at, 16), v128.load(k + at, 16), hi);
    }
    return hsum8(lo, hi);
  }
  const np = n & ~31;
  let total: f64 = 0;
  if (np > 0) {
    const bytes = <usize>np << 2;
    total = <f64>laneSum(f32x4.add(halfTree(q, k, bytes, 0, 0, WIDE), halfTree(q, k, bytes, 1, 0, WIDE)));
  }
  for (let i = np; i < n; i++) total += <f64>(load<f32>(q + (<usize>i << 2)) * load<f32>(k + (<usize>i << 2)));
  return <f32>total;
}

/** dotRow (single-token order, n a multiple of 32) of q against a key row in F16 at kh, WIDENING into kw or DIRECT. */
// @ts-ignore: decorator
@inline function dotRowHalves(q: usize, kh: usize, kw: usize, n: i32, keys: i32): f32 {
  const bytes = <usize>n << 2;
  return laneSum(f32x4.add(halfTree(q, kw, bytes, 0, kh, keys), halfTree(q, kw, bytes, 1, kh, keys)));
}

/** Where row j of one KV head starts in an F16 cache: `source` is the head's place in row 0, rows `kvWidth` halves apart; rowMap maps positions to rows of a paged cache (0: the identity). */
// @ts-ignore: decorator
@inline function halfRow(source: usize, kvWidth: i32, rowMap: usize, j: i32): usize {
  const row = rowMap == 0 ? j : load<i32>(rowMap + (<usize>j << 2));
  return source + (<usize>(row * kvWidth) << 1);
}

/**
 * How a head's f32 copy lies (`cells`, a multiple of 32, is the copy's length in cells):
 * - ROWS: row j at j·headDim (the keys);
 * - SLOTTED: the values of single tokens, in the order their slot sums read them (slottedAt);
 * - TRANSPOSED: the values of batches, dimension d's row holding every cell (attendBlocks).
 */
const ROWS = 0, SLOTTED = 1, TRANSPOSED = 2;

/**
 * Bytes of a slice in the SLOTTED layout: sixteen dimensions, or the whole row where its dimensions are
 * not a multiple of sixteen.
 */
// @ts-ignore: decorator
@inline function sliceBytes(rowBytes: usize): usize {
  return rowBytes % 64 == 0 ? 64 : rowBytes;
}

/**
 * Where byte `at` of row j lies in the SLOTTED layout: slice by slice, and within a slice slot by slot
 * (j mod 32), each slot's cells in order. The slot sums then stream their values in order, where rows
 * read by slot stepped 32 rows at a time (A/B single thread, same outputs: 1.15× the attention of a
 * TinyLlama token at 2048 cells).
 */
// @ts-ignore: decorator
@inline function slottedAt(dst: usize, j: i32, at: usize, rowBytes: usize, cells: i32): usize {
  const slice = sliceBytes(rowBytes);
  const index = at / slice;
  return dst + ((index * 32 + <usize>(j & 31)) * <usize>(cells >> 5) + <usize>(j >> 5)) * slice + at % slice;
}

/** Four widened values of row j, dimensions d … d + 3, into a head's f32 copy at dst, laid out as `layout` says. */
// @ts-ignore: decorator
@inline function storeWide(v: v128, dst: usize, j: i32, d: i32, headDim: i32, cells: i32, layout: i32): void {
  if (layout == ROWS) {
    v128.store(dst + (<usize>(j * headDim + d) << 2), v);
    return;
  }
  if (layout == SLOTTED) {
    v128.store(slottedAt(dst, j, <usize>d << 2, <usize>headDim << 2, cells), v);
    return;
  }
  const at = dst + (<usize>(d * cells + j) << 2);
  const stride = <usize>cells << 2;
  store<f32>(at, f32x4.extract_lane(v, 0));
  store<f32>(at + stride, f32x4.extract_lane(v, 1));
  store<f32>(at + 2 * stride, f32x4.extract_lane(v, 2));
  store<f32>(at + 3 * stride, f32x4.extract_lane(v, 3));
}

/** Zeros for cells rows … ceil8(rows) − 1 of a transposed copy (see storeWide), so batches weigh whole groups of eight. */
function padTransposed(dst: usize, rows: i32, headDim: i32, cells: i32): void {
  const padded = (rows + 7) & ~7;
  for (let d = 0; d < headDim; d++) memory.fill(dst + (<usize>(d * cells + rows) << 2), 0, <usize>(padded - rows) << 2);
}

/** Rows 0 … rows − 1 of one KV head (F16, `kvWidth` apart) widened to f32 at `dst`, laid out as `layout` says. */
function widenHead(src: usize, kvWidth: i32, headDim: i32, rows: i32, dst: usize, rowMap: usize, cells: i32, layout: i32): void {
  if (layout == ROWS) {
    // rows back to back, the destination only stepping on (1.03–1.07× the whole attention of eight single
    // tokens at 192 cells: no product of indices per store)
    const rowBytes = <usize>headDim << 1;
    let to = dst;
    for (let j = 0; j < rows; j++) {
      const from = halfRow(src, kvWidth, rowMap, j);
      for (let h: usize = 0; h < rowBytes; h += 8, to += 16) v128.store(to, halves4(from + h));
    }
    return;
  }
  if (layout == SLOTTED) {
    // each row's slices, a slice's four vectors together
    const rowBytes = <usize>headDim << 2;
    const slice = sliceBytes(rowBytes);
    const sliceStride = 32 * <usize>(cells >> 5) * slice;
    for (let j = 0; j < rows; j++) {
      const from = halfRow(src, kvWidth, rowMap, j);
      let to = slottedAt(dst, j, 0, rowBytes, cells);
      for (let at: usize = 0; at < rowBytes; at += slice, to += sliceStride) {
        for (let v: usize = 0; v < slice; v += 16) v128.store(to + v, halves4(from + ((at + v) >> 1)));
      }
    }
    return;
  }
  for (let j = 0; j < rows; j++) {
    const from = halfRow(src, kvWidth, rowMap, j);
    for (let d = 0; d < headDim; d += 4) storeWide(halves4(from + (<usize>d << 1)), dst, j, d, headDim, cells, layout);
  }
  padTransposed(dst, rows, headDim, cells);
}

/** Bytes of a Q8_0 block: an f16 scale and 32 int8 quants. */
const Q8_0_BYTES: usize = 34;

/** widenHead for a Q8_0 cache: `src` is the head's first block in row 0, rows `rowBytes` apart. */
function widenHeadQ8_0(src: usize, rowBytes: usize, headDim: i32, rows: i32, dst: usize, rowMap: usize, cells: i32, layout: i32): void {
  for (let j = 0; j < rows; j++) {
    const row = rowMap == 0 ? j : load<i32>(rowMap + (<usize>j << 2));
    let from = src + <usize>row * rowBytes;
    for (let b = 0; b < headDim; b += 32, from += Q8_0_BYTES) {
      const d = widenHalves(i32x4.extend_low_i16x8_u(v128.load16_splat(from)));
      const lo = v128.load(from, 2);
      const hi = v128.load(from, 18);
      storeWide(scaledQuarter(lo, 0, d), dst, j, b, headDim, cells, layout);
      storeWide(scaledQuarter(lo, 1, d), dst, j, b + 4, headDim, cells, layout);
      storeWide(scaledQuarter(lo, 2, d), dst, j, b + 8, headDim, cells, layout);
      storeWide(scaledQuarter(lo, 3, d), dst, j, b + 12, headDim, cells, layout);
      storeWide(scaledQuarter(hi, 0, d), dst, j, b + 16, headDim, cells, layout);
      storeWide(scaledQuarter(hi, 1, d), dst, j, b + 20, headDim, cells, layout);
      storeWide(scaledQuarter(hi, 2, d), dst, j, b + 24, headDim, cells, layout);
      storeWide(scaledQuarter(hi, 3, d), dst, j, b + 28, headDim, cells, layout);
    }
  }
  if (layout == TRANSPOSED) padTransposed(dst, rows, headDim, cells);
}

/**
 * Four dot products in tinyBLAS's order, eight lanes then hsum_float_8's steps: `bytes` of f32 at
 * `shared` against the four rows at first, first + stride, … (four independent chains of fused
 * multiply-adds). Lane i holds row i's.
 */
// @ts-ignore: decorator
@inline function fourDots(shared: usize, first: usize, stride: usize, bytes: usize): v128 {
  const r0 = first;
  const r1 = r0 + stride;
  const r2 = r1 + stride;
  const r3 = r2 + stride;
  let lo0 = f32x4.splat(0), hi0 = f32x4.splat(0), lo1 = f32x4.splat(0), hi1 = f32x4.splat(0);
  let lo2 = f32x4.splat(0), hi2 = f32x4.splat(0), lo3 = f32x4.splat(0), hi3 = f32x4.splat(0);
  for (let i: usize = 0; i < bytes; i += 32) {
    const lo = v128.load(shared + i);
    const hi = v128.load(shared + i, 16);
    lo0 = madd(lo, v128.load(r0 + i), lo0);
    hi0 = madd(hi, v128.load(r0 + i, 16), hi0);
    lo1 = madd(lo, v128.load(r1 + i), lo1);
    hi1 = madd(hi, v128.load(r1 + i, 16), hi1);
    lo2 = madd(lo, v128.load(r2 + i), lo2);
    hi2 = madd(hi, v128.load(r2 + i, 16), hi2);
    lo3 = madd(lo, v128.load(r3 + i), lo3);
    hi3 = madd(hi, v128.load(r3 + i, 16), hi3);
  }
  return slotTotals4(f32x4.add(lo0, hi0), f32x4.add(lo1, hi1), f32x4.add(lo2, hi2), f32x4.add(lo3, hi3));
}

/**
 * For four sums' lane pairs c_i = (s0 + s4, s1 + s5, s2 + s6, s3 + s7) of eight lanes (or slots): the
 * lanes (c_i0 + c_i2) + (c_i1 + c_i3), hsum_float_8's last steps.
 */
// @ts-ignore: decorator
@inline function slotTotals4(c0: v128, c1: v128, c2: v128, c3: v128): v128 {
  const u0 = f32x4.add(c0, v128.shuffle<f32>(c0, c0, 2, 3, 0, 1));
  const u1 = f32x4.add(c1, v128.shuffle<f32>(c1, c1, 2, 3, 0, 1));
  const u2 = f32x4.add(c2, v128.shuffle<f32>(c2, c2, 2, 3, 0, 1));
  const u3 = f32x4.add(c3, v128.shuffle<f32>(c3, c3, 2, 3, 0, 1));
  const u01 = v128.shuffle<f32>(u0, u1, 0, 1, 4, 5);
  const u23 = v128.shuffle<f32>(u2, u3, 0, 1, 4, 5);
  return f32x4.add(v128.shuffle<f32>(u01, u23, 0, 2, 4, 6), v128.shuffle<f32>(u01, u23, 1, 3, 5, 7));
}

/**
 * A query row of `rowBytes` at qh copied to dst, through F16 when `halves` (the keys' type meets it so),
 * and then scaled up by 2^112 for DIRECT keys (exact: an F16 value times 2^112 stays within f32's range).
 */
// @ts-ignore: decorator
@inline function roundQuery(qh: usize, dst: usize, rowBytes: usize, halves: bool, scaled: bool): void {
  for (let d: usize = 0; d < rowBytes; d += 16) {
    const x = v128.load(qh + d);
    const rounded = halves ? roundThroughHalf4(x) : x;
    v128.store(dst + d, scaled ? f32x4.mul(rounded, f32x4.splat(TWO_TO_112)) : rounded);
  }
}

/**
 * One head of one query token, in vec_dot's order (single tokens; batches go through attendBlocks):
 * out = softmax(q·K / √d)·V over cells 0 … visible − 1 of K and V widened to f32 (K's rows `headDim`
 * apart, V SLOTTED in a copy `cells` long).
 * `probs` holds the scores, `acc` the V accumulators, `qh16` q through F16. `halves` (an F16 cache)
 * rounds q and the probabilities through F16; otherwise q comes already rounded to the keys' type and the
 * probabilities stay f32.
 */
function attendHead(
  qh: usize, keys: usize, values: usize, o: usize, probs: usize, acc: usize, qh16: usize,
  first: i32, visible: i32, headDim: i32, cells: i32, scale: f32, cap: f32, halves: bool,
): void {
  headProbabilities(qh, keys, probs, qh16, first, visible, headDim, scale, cap, halves, 0, 0, 0);
  slotSums(values, probs, acc, visible, <usize>headDim << 2, cells);
  reduceSlots(acc, o, visible, headDim);
}

/**
 * attendHead for two query heads of one KV head (q at qa and qb, out at oa and ob), their probabilities at
 * probs and probs + 4·cells: the same steps, but their V sums together (slotSumsPair). With keySource
 * set, K and V are still F16 there and at valueSource (rows as halfRow finds them), and this pair widens
 * them into keys and values on the way, for the group's other heads.
 */
function attendHeadPair(
  qa: usize, qb: usize, keys: usize, values: usize, oa: usize, ob: usize, probs: usize, cells: i32, acc: usize, qh16: usize,
  first: i32, visible: i32, headDim: i32, scale: f32, cap: f32, halves: bool, keySource: usize, valueSource: usize, kvWidth: i32, rowMap: usize,
): void {
  const rowBytes = <usize>headDim << 2;
  const probsBytes = <usize>cells << 2;
  headProbabilities(qa, keys, probs, qh16, first, visible, headDim, scale, cap, halves, keySource, kvWidth, rowMap);
  headProbabilities(qb, keys, probs + probsBytes, qh16 + rowBytes, first, visible, headDim, scale, cap, halves, 0, 0, 0);
  if (keySource != 0) {
    slotSumsPairWidening(values, probs, probs + probsBytes, acc, acc + 32 * rowBytes, visible, rowBytes, cells, valueSource, kvWidth, rowMap);
  } else {
    slotSumsPair(values, probs, probs + probsBytes, acc, acc + 32 * rowBytes, visible, rowBytes, cells);
  }
  reduceSlots(acc, oa, visible, headDim);
  reduceSlots(acc + 32 * rowBytes, ob, visible, headDim);
}

/** One head's scores (soft-capped where `cap` is set, then scaled) and their softmax, at probs. */
function headProbabilities(qh: usize, keys: usize, probs: usize, qh16: usize, first: i32, visible: i32, headDim: i32, scale: f32, cap: f32, halves: bool, keySource: usize, kvWidth: i32, rowMap: usize): void {
  const rowBytes = <usize>headDim << 2;
  roundQuery(qh, qh16, rowBytes, halves, false);
  // the dot products first (the first head of its group widens the key rows as it meets them, into `keys`
  // for the others)
  for (let j = first; j < visible; j++) {
    const key = keys + <usize>j * rowBytes;
    const dot = keySource != 0 ? dotRowHalves(qh16, halfRow(keySource, kvWidth, rowMap, j), key, headDim, WIDENING) : dotRow(qh16, key, headDim, 0);
    store<f32>(probs + (<usize>j << 2), dot);
  }
  dotsToProbabilities(probs, first, visible, scale, cap, halves);
}

/** Dot products at probs (cells first … visible − 1) → scores (four at a time, soft-capped through tanh4 where `cap` is set) → their softmax, in place. */
function dotsToProbabilities(probs: usize, first: i32, visible: i32, scale: f32, cap: f32, halves: bool): void {
  const invCap: f32 = cap != 0 ? <f32>1.0 / cap : 0;
  let j = first;
  for (; j + 4 <= visible; j += 4) v128.store(probs + (<usize>j << 2), scores4(v128.load(probs + (<usize>j << 2)), cap, invCap, scale));
  for (; j < visible; j++) store<f32>(probs + (<usize>j << 2), score(load<f32>(probs + (<usize>j << 2)), cap, invCap, scale));
  let max: f32 = -Infinity;
  for (j = first; j < visible; j++) {
    const s = load<f32>(probs + (<usize>j << 2));
    if (s > max) max = s;
  }
  softmaxRow(probs, first, visible, max, halves);
}

/**
 * One token's query heads h0 … h0 + n − 1 (a unit: P_LONE_HEADS heads or fewer, QUERY_BLOCK at most, the
 * scores' room), each with a KV head of its own, over an F16 cache. The same arithmetic as attendHead,
 * but the cells go by in order for all n heads at once, so that each row of the cache is read as one
 * stretch of n heads, not n times a head's piece of it: a 7B-shaped model's rows lie 8 KiB apart, and
 * head by head its attention waited on memory (single thread, 32 heads of 128 at 1024 cells: 190–240 ns
 * a cell and head before, 73–80 with the cells in order, 60–65 with the values below).
 * - The keys are read DIRECT.
 * - So are the values: each slot's sums stay in `acc` (n · 32 rows of `headDim`) while the cells go by,
 *   and each probability comes scaled up by 2^112 to meet F16 values scaled down as much, so every
 *   product is the one a widened copy gave.
 * `q` and `out` are the token's rows of every head; keys and values point at row 0 of the cache.
 */
function attendLoneHeads(
  q: usize, out: usize, h0: i32, n: i32, keys: usize, values: usize, kvWidth: i32, rowMap: usize, probs: usize, acc: usize, qh16: usize,
  first: i32, visible: i32, headDim: i32, cells: i32, scale: f32, cap: f32,
): void {
  const rowBytes = <usize>headDim << 2;
  const probsBytes = <usize>cells << 2;
  const heads = <usize>n;
  const offset = <usize>(h0 * headDim) << 1;
  for (let i: usize = 0; i < heads; i++) roundQuery(q + offset * 2 + i * rowBytes, qh16 + i * rowBytes, rowBytes, true, true);
  for (let j = first; j < visible; j++) {
    const row = halfRow(keys, kvWidth, rowMap, j) + offset;
    for (let i: usize = 0; i < heads; i++) {
      store<f32>(probs + i * probsBytes + (<usize>j << 2), dotRowHalves(qh16 + i * rowBytes, row + ((i * rowBytes) >> 1), 0, headDim, DIRECT));
    }
  }
  for (let i: usize = 0; i < heads; i++) dotsToProbabilities(probs + i * probsBytes, first, visible, scale, cap, true);
  // slot sums from a fused product with zero, as slotSums starts them
  memory.fill(acc, 0, heads * 32 * rowBytes);
  const up = f32x4.splat(TWO_TO_112);
  // cells in runs of 128: a slot's cells of a run (four, 32 apart, or fewer at the end) meet its sums
  // loaded once (single thread, 32 heads of 128 at 1024 cells: 1.26× the attention that loaded and
  // stored them for every cell)
  for (let j0 = 0; j0 < visible; j0 += 128) {
    for (let j = j0; j < min(visible, j0 + 32); j++) {
      const count = min(4, ((visible - 1 - j) >> 5) + 1);
      const slot = acc + <usize>(j & 31) * rowBytes;
      if (count < 4) {
        for (let c = 0; c < count; c++) loneValues(slot, halfRow(values, kvWidth, rowMap, j + 32 * c) + offset, probs + (<usize>(j + 32 * c) << 2), heads, probsBytes, rowBytes, up);
        continue;
      }
      const r0 = halfRow(values, kvWidth, rowMap, j) + offset;
      const r1 = halfRow(values, kvWidth, rowMap, j + 32) + offset;
      const r2 = halfRow(values, kvWidth, rowMap, j + 64) + offset;
      const r3 = halfRow(values, kvWidth, rowMap, j + 96) + offset;
      for (let i: usize = 0; i < heads; i++) {
        const p = probs + i * probsBytes + (<usize>j << 2);
        const p0 = f32x4.mul(v128.load32_splat(p), up);
        const p1 = f32x4.mul(v128.load32_splat(p, 128), up);
        const p2 = f32x4.mul(v128.load32_splat(p, 256), up);
        const p3 = f32x4.mul(v128.load32_splat(p, 384), up);
        const h = (i * rowBytes) >> 1;
        const a = slot + i * 32 * rowBytes;
        for (let d: usize = 0; d < rowBytes; d += 16) {
          let x = v128.load(a + d);
          x = madd(p0, halvesScaledDown4(r0 + h + (d >> 1)), x);
          x = madd(p1, halvesScaledDown4(r1 + h + (d >> 1)), x);
          x = madd(p2, halvesScaledDown4(r2 + h + (d >> 1)), x);
          x = madd(p3, halvesScaledDown4(r3 + h + (d >> 1)), x);
          v128.store(a + d, x);
        }
      }
    }
  }
  for (let i: usize = 0; i < heads; i++) reduceSlots(acc + i * 32 * rowBytes, out + offset * 2 + i * rowBytes, visible, headDim);
}

/** One cell's values (its F16 row of the unit's heads at `row`, probabilities at `p`, heads `probsBytes` apart) into each head's slot at `slot`. */
// @ts-ignore: decorator
@inline function loneValues(slot: usize, row: usize, p: usize, heads: usize, probsBytes: usize, rowBytes: usize, up: v128): void {
  for (let i: usize = 0; i < heads; i++) {
    const pi = f32x4.mul(v128.load32_splat(p + i * probsBytes), up);
    const v = row + ((i * rowBytes) >> 1);
    const a = slot + i * 32 * rowBytes;
    for (let d: usize = 0; d < rowBytes; d += 16) v128.store(a + d, madd(pi, halvesScaledDown4(v + (d >> 1)), v128.load(a + d)));
  }
}

/**
 * V: slot s of acc accumulates p_j·V_j over the cells j ≡ s (mod 32) in order, from a fused product with
 * zero; slots that no key reached read as zero in reduceSlots. The values lie SLOTTED (`cells` long), so
 * each slot's cells stream in order. Two slots a pass, each slice's four vectors of dimensions in
 * registers for both.
 */
function slotSums(values: usize, probs: usize, acc: usize, visible: i32, rowBytes: usize, cells: i32): void {
  const slots: usize = 32;
  const used = <usize>min(visible, <i32>slots);
  const slice = sliceBytes(rowBytes);
  const perSlot = <usize>(cells >> 5) * slice;
  const step = slots << 2;
  for (let d: usize = 0; d < rowBytes; d += slice) {
    const first = values + (d / slice) * slots * perSlot;
    if (slice != 64) {
      // rows of fewer than sixteen dimensions (or not a multiple of them): a vector at a time
      for (let s: usize = 0; s < used; s++) {
        const end = first + s * perSlot + cellsOfSlot(visible, s) * slice;
        for (let v: usize = 0; v < slice; v += 16) {
          let a = f32x4.splat(0);
          let p = probs + (s << 2);
          for (let row = first + s * perSlot + v; row < end; row += slice, p += step) a = madd(v128.load32_splat(p), v128.load(row), a);
          v128.store(acc + s * rowBytes + d + v, a);
        }
      }
      continue;
    }
    for (let s: usize = 0; s < used; s += 2) {
      // slot s + 1 (when used) has as many cells as slot s, or one fewer: slot s alone takes the rest
      const pair = s + 1 < used;
      const count = cellsOfSlot(visible, s);
      const shared = pair ? cellsOfSlot(visible, s + 1) : 0;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      let row = first + s * perSlot;
      let p = probs + (s << 2);
      let k: usize = 0;
      for (; k < shared; k++, row += 64, p += step) {
        const x = v128.load32_splat(p);
        const y = v128.load32_splat(p, 4);
        a0 = madd(x, v128.load(row), a0);
        b0 = madd(y, v128.load(row + perSlot), b0);
        a1 = madd(x, v128.load(row, 16), a1);
        b1 = madd(y, v128.load(row + perSlot, 16), b1);
        a2 = madd(x, v128.load(row, 32), a2);
        b2 = madd(y, v128.load(row + perSlot, 32), b2);
        a3 = madd(x, v128.load(row, 48), a3);
        b3 = madd(y, v128.load(row + perSlot, 48), b3);
      }
      for (; k < count; k++, row += 64, p += step) {
        const x = v128.load32_splat(p);
        a0 = madd(x, v128.load(row), a0);
        a1 = madd(x, v128.load(row, 16), a1);
        a2 = madd(x, v128.load(row, 32), a2);
        a3 = madd(x, v128.load(row, 48), a3);
      }
      const at = acc + s * rowBytes + d;
      v128.store(at, a0);
      v128.store(at, a1, 16);
      v128.store(at, a2, 32);
      v128.store(at, a3, 48);
      if (pair) {
        v128.store(at + rowBytes, b0);
        v128.store(at + rowBytes, b1, 16);
        v128.store(at + rowBytes, b2, 32);
        v128.store(at + rowBytes, b3, 48);
      }
    }
  }
}

/** How many of cells 0 … visible − 1 fall in slot s (s < visible). */
// @ts-ignore: decorator
@inline function cellsOfSlot(visible: i32, s: usize): usize {
  return (<usize>(visible - 1 - <i32>s) >> 5) + 1;
}

/**
 * slotSums for two heads' probabilities (pa, pb) into their accumulators (acca, accb), for rows of a
 * multiple of 16 dimensions: four dimensions of both heads a pass, so that each V line loaded serves
 * both and the eight accumulators, two broadcasts and four lines fit x86-64's sixteen vector registers
 * (with eight dimensions of one head, V8 kept an accumulator on the stack).
 */
function slotSumsPair(values: usize, pa: usize, pb: usize, acca: usize, accb: usize, visible: i32, rowBytes: usize, cells: i32): void {
  slotSumsPairOf(values, pa, pb, acca, accb, visible, rowBytes, cells, 0, 0, 0, false);
}

/** slotSumsPair for the first pair of a group, which widens the value rows from `source` into `values` as it meets them. */
function slotSumsPairWidening(values: usize, pa: usize, pb: usize, acca: usize, accb: usize, visible: i32, rowBytes: usize, cells: i32, valueSource: usize, kvWidth: i32, rowMap: usize): void {
  slotSumsPairOf(values, pa, pb, acca, accb, visible, rowBytes, cells, valueSource, kvWidth, rowMap, true);
}

// @ts-ignore: decorator
@inline function slotSumsPairOf(values: usize, pa: usize, pb: usize, acca: usize, accb: usize, visible: i32, rowBytes: usize, cells: i32, valueSource: usize, kvWidth: i32, rowMap: usize, widen: bool): void {
  const slots: usize = 32;
  const used = <usize>min(visible, <i32>slots);
  const perSlot = <usize>(cells >> 5) << 6;
  for (let d: usize = 0; d < rowBytes; d += 64) {
    for (let s: usize = 0; s < used; s++) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      let p = s << 2;
      let j = <i32>s;
      // the slot's cells of this slice, SLOTTED
      const start = values + ((d >> 6) * slots + s) * perSlot;
      const end = start + (cellsOfSlot(visible, s) << 6);
      for (let row = start; row < end; row += 64, p += slots << 2, j += <i32>slots) {
        const x = v128.load32_splat(pa + p);
        const y = v128.load32_splat(pb + p);
        let v0: v128, v1: v128, v2: v128, v3: v128;
        if (widen) {
          const h = halfRow(valueSource, kvWidth, rowMap, j) + (d >> 1);
          v0 = halves4(h);
          v1 = halves4(h + 8);
          v2 = halves4(h + 16);
          v3 = halves4(h + 24);
          v128.store(row, v0);
          v128.store(row, v1, 16);
          v128.store(row, v2, 32);
          v128.store(row, v3, 48);
        } else {
          v0 = v128.load(row);
          v1 = v128.load(row, 16);
          v2 = v128.load(row, 32);
          v3 = v128.load(row, 48);
        }
        a0 = madd(x, v0, a0);
        b0 = madd(y, v0, b0);
        a1 = madd(x, v1, a1);
        b1 = madd(y, v1, b1);
        a2 = madd(x, v2, a2);
        b2 = madd(y, v2, b2);
        a3 = madd(x, v3, a3);
        b3 = madd(y, v3, b3);
      }
      const at = s * rowBytes + d;
      v128.store(acca + at, a0);
      v128.store(acca + at, a1, 16);
      v128.store(acca + at, a2, 32);
      v128.store(acca + at, a3, 48);
      v128.store(accb + at, b0);
      v128.store(accb + at, b1, 16);
      v128.store(accb + at, b2, 32);
      v128.store(accb + at, b3, 48);
    }
  }
}

/** The 32 slots of acc (those past `visible` as zeros) reduced as GGML_F32_VEC_REDUCE, into o. */
function reduceSlots(acc: usize, o: usize, visible: i32, headDim: i32): void {
  const rowBytes = <usize>headDim << 2;
  const used = <usize>min(visible, 32);
  // slots that no key reached hold +0, as the reduction adds them (then every group of four dimensions
  // reduces without a test per slot: 1.21× the whole attention of a Gemma-2 token at 64 cells)
  if (used < 32) memory.fill(acc + used * rowBytes, 0, (32 - used) * rowBytes);
  for (let d: usize = 0; d < rowBytes; d += 16) {
    // (s_l + s_16+l) + (s_8+l + s_24+l) for the eight lanes l, then the hadd pattern
    const z0 = slotQuad(acc + d, rowBytes, 0);
    const z1 = slotQuad(acc + d, rowBytes, 1);
    const z2 = slotQuad(acc + d, rowBytes, 2);
    const z3 = slotQuad(acc + d, rowBytes, 3);
    const z4 = slotQuad(acc + d, rowBytes, 4);
    const z5 = slotQuad(acc + d, rowBytes, 5);
    const z6 = slotQuad(acc + d, rowBytes, 6);
    const z7 = slotQuad(acc + d, rowBytes, 7);
    const h0 = f32x4.add(f32x4.add(z0, z4), f32x4.add(z1, z5));
    const h1 = f32x4.add(f32x4.add(z2, z6), f32x4.add(z3, z7));
    v128.store(o + d, f32x4.add(h0, h1));
  }
}

/** (s_l + s_16+l) + (s_8+l + s_24+l) of four dimensions, slot k's at at + k·stride. */
// @ts-ignore: decorator
@inline function slotQuad(at: usize, stride: usize, l: usize): v128 {
  const x = f32x4.add(v128.load(at + l * stride), v128.load(at + (16 + l) * stride));
  const y = f32x4.add(v128.load(at + (8 + l) * stride), v128.load(at + (24 + l) * stride));
  return f32x4.add(x, y);
}

/**
 * Scores at probs (cells first … visible − 1, `max` their largest) → probabilities in place, zero before
 * `first` and past `visible` up to a multiple of eight; through F16 when `halves`.
 */
function softmaxRow(probs: usize, first: i32, visible: i32, max: f32, halves: bool): void {
  // ggml's softmax sums chunks of eight over the padded cells; the masked ones (past the query, or
  // before its window) add exact zeros.
  let sum: f64 = 0;
  const mx = f32x4.splat(max);
  const lane = v128(0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0);
  const start = first & ~7;
  memory.fill(probs, 0, <usize>start << 2);
  const low = i32x4.splat(first - 1);
  const high = i32x4.splat(visible);
  for (let c = start; c < visible; c += 8) {
    const index = i32x4.add(i32x4.splat(c), lane);
    const index4 = i32x4.add(index, i32x4.splat(4));
    const lo = v128.and(expf4(f32x4.sub(v128.load(probs + (<usize>c << 2)), mx)), v128.and(i32x4.lt_s(index, high), i32x4.gt_s(index, low)));
    const hi = v128.and(expf4(f32x4.sub(v128.load(probs + (<usize>c << 2), 16), mx)), v128.and(i32x4.lt_s(index4, high), i32x4.gt_s(index4, low)));
    v128.store(probs + (<usize>c << 2), lo);
    v128.store(probs + (<usize>c << 2), hi, 16);
    sum += <f64>hsum8(lo, hi);
  }
  const inv = f32x4.splat(<f32>(1.0 / sum));
  for (let j: usize = 0; j < <usize>visible << 2; j += 16) {
    const p = f32x4.mul(v128.load(probs + j), inv);
    v128.store(probs + j, halves ? roundThroughHalf4(p) : p);
  }
}

/** A score as ggml forms it: the dot product, soft-capped (cap·tanh(s / cap)) when `cap` is set, times the scale. */
// @ts-ignore: decorator
@inline function score(dot: f32, cap: f32, invCap: f32, scale: f32): f32 {
  if (cap != 0) dot = <f32>Math.tanh(<f64>(dot * invCap)) * cap;
  return dot * scale;
}

/** score for four dot products at once. */
// @ts-ignore: decorator
@inline function scores4(dots: v128, cap: f32, invCap: f32, scale: f32): v128 {
  if (cap != 0) dots = f32x4.mul(tanh4(f32x4.mul(dots, f32x4.splat(invCap))), f32x4.splat(cap));
  return f32x4.mul(dots, f32x4.splat(scale));
}

/** Query rows a batched unit takes together: each key and value line loaded serves all of them. */
export const QUERY_BLOCK = 16;

/**
 * A unit's query rows (tokens t0 … t1 − 1, the `group` query heads of KV head g) in blocks of
 * QUERY_BLOCK, in tinyBLAS's order: the block's scores four keys at a time for every row (fourDots; a
 * key outside a row's window alone, through dotRow, same order), each row's softmax, then its values four
 * dimensions at a time for every row. For the values, slot j mod 8 accumulates its cells in order and the
 * eight slots are reduced as hsum_float_8 does; V comes transposed (a row of `cells` per dimension, zero
 * past the visible ones up to a multiple of eight), so each V line is read once for the whole block. Each
 * row keeps its own scores at probs and q through F16 at qh16 (QUERY_BLOCK of each); `meta` holds its
 * visible cells, first cell and output address.
 */
function attendBlocks(
  q: usize, out: usize, positions: usize, t0: i32, t1: i32, g: i32, group: i32, heads: i32, keys: usize, values: usize,
  probs: usize, qh16: usize, meta: usize, headDim: i32, cells: i32, scale: f32, cap: f32, window: i32, halves: bool,
): void {
  const invCap: f32 = cap != 0 ? <f32>1.0 / cap : 0;
  const rowBytes = <usize>headDim << 2;
  // a row's scores and a transposed V line both run over the cells
  const cellBytes = <usize>cells << 2;
  const count = (t1 - t0) * group;
  for (let b0 = 0; b0 < count; b0 += QUERY_BLOCK) {
    const n = <usize>min(QUERY_BLOCK, count - b0);
    let reach = 0;
    for (let i: usize = 0; i < n; i++) {
      const t = t0 + (b0 + <i32>i) / group;
      const h = g * group + (b0 + <i32>i) % group;
      const at = <usize>((t * heads + h) * headDim) << 2;
      roundQuery(q + at, qh16 + i * rowBytes, rowBytes, halves, false);
      const visible = load<i32>(positions + (<usize>t << 2)) + 1;
      store<i32>(meta + (i << 4), visible);
      store<i32>(meta + (i << 4), window > 0 ? max(0, visible - window) : 0, 4);
      store<u32>(meta + (i << 4), <u32>(out + at), 8);
      reach = max(reach, visible);
    }
    for (let j = 0; j < reach; j += 4) {
      const k4 = keys + <usize>j * rowBytes;
      for (let i: usize = 0; i < n; i++) {
        const visible = load<i32>(meta + (i << 4));
        const first = load<i32>(meta + (i << 4), 4);
        const p = probs + i * cellBytes;
        const qi = qh16 + i * rowBytes;
        if (j >= first && j + 4 <= visible) {
          v128.store(p + (<usize>j << 2), scores4(fourDots(qi, k4, rowBytes, rowBytes), cap, invCap, scale));
        } else {
          for (let k = max(j, first); k < min(j + 4, visible); k++) {
            store<f32>(p + (<usize>k << 2), score(dotRow(qi, keys + <usize>k * rowBytes, headDim, 1), cap, invCap, scale));
          }
        }
      }
    }
    for (let i: usize = 0; i < n; i++) {
      const visible = load<i32>(meta + (i << 4));
      const first = load<i32>(meta + (i << 4), 4);
      const p = probs + i * cellBytes;
      let max: f32 = -Infinity;
      // in order, as attendHead compares them
      for (let k = first; k < visible; k++) {
        const s = load<f32>(p + (<usize>k << 2));
        if (s > max) max = s;
      }
      softmaxRow(p, first, visible, max, halves);
    }
    for (let d = 0; d < headDim; d += 4) {
      const v4 = values + <usize>d * cellBytes;
      for (let i: usize = 0; i < n; i++) {
        const end = <usize>((load<i32>(meta + (i << 4)) + 7) & ~7) << 2;
        const o = <usize>load<u32>(meta + (i << 4), 8);
        v128.store(o + (<usize>d << 2), fourDots(probs + i * cellBytes, v4, cellBytes, end));
      }
    }
  }
}

/**
 * Word offsets of attend_range's parameter block (i32 words; `scale` and `softcap` hold f32 bits): what
 * every sequence shares, then P_SEGMENTS records of SEGMENT_WORDS words, one a sequence. P_LONE_HEADS is
 * how many heads a unit of a LONE sequence takes (0 where none is).
 */
const P_WORK = 0, P_WORK_STRIDE = 1, P_HEADS = 2, P_KV_HEADS = 3, P_HEAD_DIM = 4, P_SCALE = 5, P_KV_TYPE = 6;
const P_WINDOW = 7, P_SOFTCAP = 8, P_SEGMENTS = 9, P_LONE_HEADS = 10, P_FIRST_SEGMENT = 11;
/** A sequence's record: its rows of q and out, its cache, its positions, and the first of its units. */
const S_Q = 0, S_KEYS = 1, S_VALUES = 2, S_OUT = 3, S_POSITIONS = 4, S_TOKENS = 5, S_MODE = 6, S_CHUNK = 7;
const S_CELLS = 8, S_ROWS = 9, S_FIRST_UNIT = 10;
const SEGMENT_WORDS = 12;
/** P_KV_TYPE's values. */
const KV_F16 = 0, KV_Q8_0 = 1;

/**
 * S_MODE's values, as WasmBackend's plan chooses them (and counts the units by):
 * - SINGLE: query tokens one at a time, in vec_dot's order;
 * - BATCHED: query tokens in blocks, in tinyBLAS's order (attendBlocks);
 * - LONE: one token whose query heads each have a KV head of their own, over an F16 cache, head size a
 *   multiple of 32: its units are blocks of P_LONE_HEADS heads (attendLoneHeads), not single KV heads.
 */
const SINGLE = 0, BATCHED = 1, LONE = 2;

/**
 * Causal attention of several sequences' query rows over their caches, units first … end − 1, numbered
 * across the sequences in order: a sequence's units are its (KV head, chunk of query tokens) pairs. Each
 * unit widens the rows of its KV head that its tokens see once, for every query head of the group and
 * every token of the chunk. Chunks are visited from both ends alternately, so contiguous unit ranges
 * cost about the same under the causal mask. `part` picks the calling thread's scratch area.
 */
export function attend_range(params: usize, first: i32, end: i32, _a: i32, _n: i32, _o: i32, _t: i32, _s: i32, part: i32): void {
  const heads = load<i32>(params + P_HEADS * 4);
  const kvHeads = load<i32>(params + P_KV_HEADS * 4);
  const headDim = load<i32>(params + P_HEAD_DIM * 4);
  const scale = load<f32>(params + P_SCALE * 4);
  const kvType = load<i32>(params + P_KV_TYPE * 4);
  const window = load<i32>(params + P_WINDOW * 4); // 0: none
  const cap = load<f32>(params + P_SOFTCAP * 4); // 0: none
  const segments = load<i32>(params + P_SEGMENTS * 4);
  const work = <usize>load<i32>(params + P_WORK * 4) + <usize>part * <usize>load<i32>(params + P_WORK_STRIDE * 4);
  const kvWidth = kvHeads * headDim;
  const group = heads / kvHeads;
  const loneHeads = load<i32>(params + P_LONE_HEADS * 4);
  let segment = 0;
  for (let unit = first; unit < end; unit++) {
    // units come in order, so the record only ever moves forward
    while (segment + 1 < segments && unit >= load<i32>(segmentWord(params, segment + 1, S_FIRST_UNIT))) segment++;
    const q = <usize>load<i32>(segmentWord(params, segment, S_Q));
    const keys = <usize>load<i32>(segmentWord(params, segment, S_KEYS));
    const values = <usize>load<i32>(segmentWord(params, segment, S_VALUES));
    const out = <usize>load<i32>(segmentWord(params, segment, S_OUT));
    const positions = <usize>load<i32>(segmentWord(params, segment, S_POSITIONS));
    const tokens = load<i32>(segmentWord(params, segment, S_TOKENS));
    const mode = load<i32>(segmentWord(params, segment, S_MODE));
    const batched = mode == BATCHED;
    const chunk = load<i32>(segmentWord(params, segment, S_CHUNK));
    const cells = load<i32>(segmentWord(params, segment, S_CELLS));
    const rowMap = <usize>load<i32>(segmentWord(params, segment, S_ROWS)); // position → row of a paged cache; 0: the identity
    const local = unit - load<i32>(segmentWord(params, segment, S_FIRST_UNIT));
    const headBytes = <usize>(cells * headDim) << 2;
    const wideKeys = work;
    const wideValues = wideKeys + headBytes;
    const probs = wideValues + headBytes;
    const acc = probs + (<usize>(QUERY_BLOCK * cells) << 2);
    const qh16 = acc + (<usize>(32 * max(2, loneHeads) * headDim) << 2);
    const meta = qh16 + (<usize>(QUERY_BLOCK * headDim) << 2);
    if (mode == LONE) {
      const h0 = local * loneHeads;
      const visible = load<i32>(positions) + 1;
      attendLoneHeads(
        q, out, h0, min(loneHeads, kvHeads - h0), keys, values, kvWidth, rowMap, probs, acc, qh16,
        window > 0 ? max(0, visible - window) : 0, visible, headDim, cells, scale, cap,
      );
      continue;
    }
    const chunks = (tokens + chunk - 1) / chunk;
    // batches take V transposed (attendBlocks), single tokens SLOTTED
    const valueLayout = batched ? TRANSPOSED : SLOTTED;
    const g = local % kvHeads;
    const k = local / kvHeads;
    const c = (k & 1) == 0 ? k >> 1 : chunks - 1 - (k >> 1);
    const t0 = c * chunk;
    const t1 = min(tokens, t0 + chunk);
    let seen = 0;
    for (let t = t0; t < t1; t++) seen = max(seen, load<i32>(positions + (<usize>t << 2)) + 1);
    // one token whose query heads come in pairs: its first pair widens the F16 rows as it reads them, so
    // that loading them overlaps with its arithmetic (a separate pass waited on the cache's memory)
    const fused = kvType == KV_F16 && !batched && t1 - t0 == 1 && headDim % 32 == 0 && group >= 2;
    const keySource = keys + (<usize>(g * headDim) << 1);
    const valueSource = values + (<usize>(g * headDim) << 1);
    if (kvType == KV_Q8_0) {
      const rowBytes = <usize>(kvWidth >> 5) * Q8_0_BYTES;
      const head = <usize>(g * (headDim >> 5)) * Q8_0_BYTES;
      widenHeadQ8_0(keys + head, rowBytes, headDim, seen, wideKeys, rowMap, cells, ROWS);
      widenHeadQ8_0(values + head, rowBytes, headDim, seen, wideValues, rowMap, cells, valueLayout);
    } else if (!fused) {
      widenHead(keySource, kvWidth, headDim, seen, wideKeys, rowMap, cells, ROWS);
      widenHead(valueSource, kvWidth, headDim, seen, wideValues, rowMap, cells, valueLayout);
    }
    if (batched) {
      attendBlocks(q, out, positions, t0, t1, g, group, heads, wideKeys, wideValues, probs, qh16, meta, headDim, cells, scale, cap, window, kvType == KV_F16);
      continue;
    }
    for (let t = t0; t < t1; t++) {
      const visible = load<i32>(positions + (<usize>t << 2)) + 1;
      const first = window > 0 ? max(0, visible - window) : 0;
      let h = g * group;
      const last = (g + 1) * group;
      const rowBytes = <usize>headDim << 2;
      if (headDim % 16 == 0) {
        for (; h + 2 <= last; h += 2) {
          const at = <usize>((t * heads + h) * headDim) << 2;
          const widen = fused && h == g * group;
          attendHeadPair(
            q + at, q + at + rowBytes, wideKeys, wideValues, out + at, out + at + rowBytes, probs, cells, acc, qh16,
            first, visible, headDim, scale, cap, kvType == KV_F16, widen ? keySource : 0, widen ? valueSource : 0, kvWidth, rowMap,
          );
        }
      }
      for (; h < last; h++) {
        const at = <usize>((t * heads + h) * headDim) << 2;
        attendHead(q + at, wideKeys, wideValues, out + at, probs, acc, qh16, first, visible, headDim, cells, scale, cap, kvType == KV_F16);
      }
    }
  }
}

/** The address of word `word` of sequence `segment`'s record. */
// @ts-ignore: decorator
@inline function segmentWord(params: usize, segment: i32, word: i32): usize {
  return params + (<usize>(P_FIRST_SEGMENT + segment * SEGMENT_WORDS + word) << 2);
}
