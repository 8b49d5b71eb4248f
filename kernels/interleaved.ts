// Matrix × matrix kernels over weights repacked in groups of rows (the x16, x8 and x4 layouts), for prompt
// batches and single tokens alike. Vector lanes run across four rows, so a block's integer dot product is
// finished in integers and scaled once per (row, token, block):
//   acc[r] = fma(f32(Σ q·y), f32(dw[r]·dy), acc[r])      for each block, in order.
// That is the order of llama.cpp's repacked gemv/gemm kernels rather than vec_dot's eight-lane one; the
// scalar twin is each format's blockwiseDot (blockwiseOrder in src/quant/float-order.ts).
//
// Activations come as "Q8_0 records" for T tokens of n elements (B = n/32 blocks a token), 40 bytes a
// (token, block):
//   qs   32 i8
//   d    f32      (the f16 scale widened, times 2^112: the weights' scales come as halvesScaledDown4)
//   bias 32 bits  (Q4_0's −8·Σ qs of the block, as the start of its integer sum: with relaxed SIMD two i16,
//                 over the elements ≡ 0, 1 and ≡ 2, 3 mod 4, the two halves that dotAcc's even and odd i16
//                 lanes gather; otherwise one i32 over all 32)
// in the order the batched kernel reads them: pass by pass (lastPass), and within a pass block by block,
// the pass's tokens side by side. One pointer and constant offsets then reach every token of a pass: on
// 2048-wide rows, 1.1–1.2× the throughput of token-major planes, whose per-token pointers V8 computed
// afresh for every chunk.

import { floatToHalf } from "./half";
import { fuseLanes, halfToFloat, halves4, halvesScaledDown4, loadHalf, q8_0Scale, quads, quantize16, TWO_TO_112 } from "./simd";

/**
 * Q4_0 repacked, the file's own size: sixteen rows a group, as two halves of eight rows. A group's block b
 * holds each half's nibbles, 128 bytes (chunk k's v128 holds elements 4k … 4k + 3 of the half's rows 0–3 in
 * its low nibbles and of rows 4–7 in its high nibbles, so both meet the same four activations), then the
 * sixteen f16 scales in row order; blocks stay 16-aligned. Rows 0–3, 4–7, 8–11 and 12–15 are the group's
 * four quads, lanes of one vector each. One token reads a group as one sequential stream; scales stay half
 * floats, since one token is bound by memory and widening them would stream 11% more bytes. (With each
 * byte's nibbles two elements of one row instead, every chunk needed two activation broadcasts: batches ran
 * at 0.87–0.91× this.)
 */
const Q4_0_HALF_NIBBLES: usize = 128;
const Q4_0_SCALES: usize = 2 * Q4_0_HALF_NIBBLES;
const Q4_0X16_BLOCK: usize = Q4_0_SCALES + 4 * 8;

/** Bytes of a (token, block) record, and its fields' offsets. */
const RECORD: usize = 40;
const RECORD_SCALE: usize = 32;
const RECORD_BIAS: usize = 36;

/**
 * Batches of at least this many tokens split each half of a row group once, into the calling thread's
 * scratch (Q4_0_SPLIT_BLOCK bytes a block, past the records), and every pass then loads its nibbles split.
 * A/B single thread pinned to one core, same outputs, against splitting from 48 tokens: 1.02–1.06× at 16
 * to 24 tokens and 1.06–1.09× at 32 to 47 (2048 columns), 1.02× at 16 and 1.06–1.08× at 32 to 47 (5632
 * columns). Splitting from 12 tokens was 0.99× at 12 on 5632 columns; at 8 and fewer, too few passes
 * share the split and it loses (0.84–0.98× at 8).
 */
const SPLIT_FROM_TOKENS = 16;
/** A block's half split: chunk k's low nibbles at 32k, its high nibbles at 32k + 16. */
const Q4_0_SPLIT_BLOCK: usize = 256;

/**
 * Tokens of the last pass: batches go three tokens a pass, and the rest as one pass of two or four
 * (one token alone is a pass of its own).
 */
// @ts-ignore: decorator
@inline function lastPass(tokens: i32): i32 {
  return tokens == 1 ? 1 : tokens % 3 == 0 ? 3 : tokens % 3 == 2 ? 2 : 4;
}

/**
 * T rows of n f32 activations → Q8_0 records (quantize_row_q8_0_ref's arithmetic), blocks first … end − 1
 * of the T·n/32 (token-major) only, as a range kernel.
 */
export function quantize_q8_0_record_blocks(_unused: usize, first: i32, end: i32, src: usize, n: i32, acts: usize, tokens: i32, _outStride: i32): void {
  const blocks = n / 32;
  const last = tokens - lastPass(tokens); // the last pass's first token; the passes before it take threes
  // token t's blocks in the range, one token at a time: its records lie `count` records apart
  for (let t = first / blocks, b = first - t * blocks, i = first; i < end; t++, b = 0) {
    const start = t < last ? t - t % 3 : last;
    const count = t < last ? 3 : tokens - last;
    const stop = min(blocks, b + end - i);
    const step = <usize>count * RECORD;
    let y = acts + <usize>(start * blocks + b * count + t - start) * RECORD;
    for (let x = src + <usize>i * 128; b < stop; b++, i++, x += 128, y += step) quantizeRecord(x, y);
  }
}

/** The 32 f32 at x → a Q8_0 record at y. */
// @ts-ignore: decorator
@inline function quantizeRecord(x: usize, y: usize): void {
  const d = q8_0Scale(x);
  const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
  store<f32>(y, halfToFloat(floatToHalf(d)) * TWO_TO_112, RECORD_SCALE);
  const first = quantize16(x, id);
  const second = quantize16(x + 64, id);
  v128.store(y, first);
  v128.store(y, second, 16);
  // pair sums of both halves; as i32 lanes, each holds an even and an odd i16 lane
  const pairs = i16x8.add(i16x8.extadd_pairwise_i8x16_s(first), i16x8.extadd_pairwise_i8x16_s(second));
  const halves = i16x8.add(pairs, v128.shuffle<i32>(pairs, pairs, 2, 3, 0, 1));
  const both = i16x8.add(halves, v128.shuffle<i32>(halves, halves, 1, 0, 3, 2));
  const even = <i32>i16x8.extract_lane_s(both, 0);
  const odd = <i32>i16x8.extract_lane_s(both, 1);
  if (ASC_FEATURE_RELAXED_SIMD) store<u32>(y, (<u32>(-8 * even) & 0xffff) | (<u32>(-8 * odd) << 16), RECORD_BIAS);
  else store<i32>(y, -8 * (even + odd), RECORD_BIAS);
}

/** Standard Q4_0 rows (rows a multiple of 16) → the x16 layout. */
export function repack_q4_0x16(src: usize, dst: usize, rows: i32, n: i32): void {
  const blocks = <usize>(n / 32);
  for (let g: usize = 0; g < <usize>(rows >> 4); g++) {
    for (let b: usize = 0; b < blocks; b++) {
      const block = dst + (g * blocks + b) * Q4_0X16_BLOCK;
      const first = src + (g * 16 * blocks + b) * 18;
      const rowBytes = blocks * 18;
      for (let r: usize = 0; r < 16; r++) store<u16>(block + Q4_0_SCALES + (r << 1), load<u16>(first + r * rowBytes));
      for (let half: usize = 0; half < 2; half++) {
        for (let r: usize = 0; r < 4; r++) {
          const low = first + (8 * half + r) * rowBytes;
          const high = low + 4 * rowBytes;
          // chunk k holds elements 4k … 4k + 3: the low nibbles of bytes 4k … 4k + 3 for k < 4, else the high
          // nibbles of bytes 4k − 16 … 4k − 13
          for (let k: usize = 0; k < 8; k++) {
            const at = 2 + ((k & 3) << 2);
            const shift = k < 4 ? 0 : 4;
            const lowLevels = (load<u32>(low + at) >> shift) & 0x0f0f0f0f;
            const highLevels = (load<u32>(high + at) >> shift) & 0x0f0f0f0f;
            store<u32>(block + half * Q4_0_HALF_NIBBLES + (k << 4) + (r << 2), lowLevels | (highLevels << 4));
          }
        }
      }
    }
  }
}

/**
 * Adds four rows' products of unsigned levels u (four consecutive elements per row) with the same four
 * activations y: i16 pair sums under relaxed SIMD (exact while fewer than 8 products of 15·127 pile up
 * per lane), i32 row sums otherwise.
 */
// @ts-ignore: decorator
@inline function dotAcc(s: v128, u: v128, y: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(y, u));
  return i32x4.add(s, quads(u, y));
}

/** dotAcc(dotAcc(0, u0, y0), u1, y1) without adding the zero. */
// @ts-ignore: decorator
@inline function dotPair(u0: v128, y0: v128, u1: v128, y1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(y0, u0), i16x8.relaxed_dot_i8x16_i7x16_s(y1, u1));
  return i32x4.add(quads(u0, y0), quads(u1, y1));
}

/** dotAcc's sums as one i32 per row. */
// @ts-ignore: decorator
@inline function rowTotals(s: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.extadd_pairwise_i16x8_s(s);
  return s;
}

/** The high nibbles of 16 bytes: a 16-bit shift and a mask (x86 has no byte shift; i8x16.shr_u costs more). */
// @ts-ignore: decorator
@inline function highNibbles(p: v128, mask: v128): v128 {
  return v128.and(i16x8.shr_u(p, 4), mask);
}

/**
 * Where a block's integer sums start: −8·Σy from its record at y, so that they end as Σ (q − 8)·y. Each
 * i16 lane then holds at most 16 products of 8·127 at any point, wherever the chunks' dots have got to.
 */
// @ts-ignore: decorator
@inline function q4Start(y: usize): v128 {
  return v128.load32_splat(y + RECORD_BIAS);
}

/** acc = fma(row totals of s, dw·dy, acc), dy from the block's record at y: the block's one rounding step (dw from halvesScaledDown4). */
// @ts-ignore: decorator
@inline function q4Finish(acc: v128, s: v128, dw: v128, y: usize): v128 {
  return fuseLanes(acc, rowTotals(s), f32x4.mul(dw, v128.load32_splat(y + RECORD_SCALE)));
}

/**
 * out[t·outStride + r] for rows 16·first … 16·end − 1 and tokens 0 … tokens − 1: Q4_0x16 weights · Q8_0
 * records. Single tokens take a group's two halves together, so each activation load serves sixteen rows;
 * prompt batches go a half and three tokens at a time (q4_0HalfPass), so each weight block is loaded and
 * unpacked once for three tokens and each activation load serves eight rows (a group's blocks stay in
 * cache while its halves take turns). From SPLIT_FROM_TOKENS tokens on, each half is split once into
 * thread `part`'s scratch, Q4_0_SPLIT_BLOCK bytes a block just past the records, and the passes read it.
 */
export function gemm_q4_0x16(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32, part: i32): void {
  const blocks = <usize>(n / 32);
  const mask = i8x16.splat(0x0f);
  const groupBytes = blocks * Q4_0X16_BLOCK;
  const stride = <usize>outStride << 2;
  if (tokens == 1) {
    for (let g = <usize>first; g < <usize>end; g++) {
      const w = weights + g * groupBytes;
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let acc2 = f32x4.splat(0);
      let acc3 = f32x4.splat(0);
      let y = acts;
      for (let x = w; x < w + groupBytes; x += Q4_0X16_BLOCK, y += RECORD) {
        const start = q4Start(y);
        let s0 = start, s1 = start, s2 = start, s3 = start;
        let yk = y;
        for (let p = x; p < x + Q4_0_HALF_NIBBLES; p += 16, yk += 4) {
          const splat = v128.load32_splat(yk);
          const p0 = v128.load(p);
          const p1 = v128.load(p, Q4_0_HALF_NIBBLES);
          s0 = dotAcc(s0, v128.and(p0, mask), splat);
          s1 = dotAcc(s1, highNibbles(p0, mask), splat);
          s2 = dotAcc(s2, v128.and(p1, mask), splat);
          s3 = dotAcc(s3, highNibbles(p1, mask), splat);
        }
        const d = x + Q4_0_SCALES;
        acc0 = q4Finish(acc0, s0, halvesScaledDown4(d), y);
        acc1 = q4Finish(acc1, s1, halvesScaledDown4(d + 8), y);
        acc2 = q4Finish(acc2, s2, halvesScaledDown4(d + 16), y);
        acc3 = q4Finish(acc3, s3, halvesScaledDown4(d + 24), y);
      }
      v128.store(out + (g << 6), acc0);
      v128.store(out + (g << 6), acc1, 16);
      v128.store(out + (g << 6), acc2, 32);
      v128.store(out + (g << 6), acc3, 48);
    }
    return;
  }
  const split = acts + <usize>tokens * blocks * RECORD + <usize>part * blocks * Q4_0_SPLIT_BLOCK;
  for (let g = <usize>first; g < <usize>end; g++) {
    for (let half: usize = 0; half < 2; half++) {
      const w = weights + g * groupBytes + half * Q4_0_HALF_NIBBLES;
      // the half's two quads' scales, from its nibbles' start in a block
      const scales = Q4_0_SCALES + half * 16 - half * Q4_0_HALF_NIBBLES;
      const o = out + (g << 6) + (half << 5);
      if (tokens < SPLIT_FROM_TOKENS) {
        q4_0HalfPasses(w, w + groupBytes, scales, acts, blocks, tokens, o, stride, false);
        continue;
      }
      for (let x = w, u = split; x < w + groupBytes; x += Q4_0X16_BLOCK) {
        for (let p = x; p < x + Q4_0_HALF_NIBBLES; p += 16, u += 32) {
          const chunk = v128.load(p);
          v128.store(u, v128.and(chunk, mask));
          v128.store(u, highNibbles(chunk, mask), 16);
        }
      }
      q4_0HalfPasses(split, split + blocks * Q4_0_SPLIT_BLOCK, w + scales, acts, blocks, tokens, o, stride, true);
    }
  }
}

/**
 * A half's passes over all tokens: threes, and the rest as one pass of two or four tokens (tokens ≥ 2).
 * Packed (`split` false): w … wEnd are the half's blocks in the x16 layout and `scales` is its scales'
 * offset from each block's nibbles. Split: w … wEnd hold the blocks split, and `scales` is the address of
 * the first block's scales, Q4_0X16_BLOCK apart.
 */
// @ts-ignore: decorator
@inline function q4_0HalfPasses(w: usize, wEnd: usize, scales: usize, acts: usize, blocks: usize, tokens: i32, o: usize, stride: usize, split: bool): void {
  const rest = <usize>(tokens % 3 == 0 ? 0 : lastPass(tokens));
  const threesEnd = <usize>tokens - rest;
  const restActs = acts + threesEnd * blocks * RECORD;
  for (let t: usize = 0; t < threesEnd; t += 3) q4_0HalfPass(w, wEnd, scales, acts + t * blocks * RECORD, o + t * stride, stride, 3, split);
  if (rest == 2) q4_0HalfPass(w, wEnd, scales, restActs, o + threesEnd * stride, stride, 2, split);
  if (rest == 4) q4_0HalfPass(w, wEnd, scales, restActs, o + threesEnd * stride, stride, 4, split);
}

/**
 * One half's rows for `count` (2, 3 or 4, a constant where inlined) tokens, whose records start at y
 * (one pass's, block by block), into rows o, o + stride, …: each chunk is loaded and split once for all of
 * them (or, with `split`, loaded already split; w, wEnd and scales as q4_0HalfPasses says), and each
 * activation broadcast serves eight rows. Three tokens rather than four where there is the
 * choice: at four, the i16 sums, the split nibbles and the broadcasts overflow the sixteen vector
 * registers of x86-64 and V8 keeps a hot sum on the stack (A/B single thread, same outputs: threes ran
 * 1.11–1.16× four-token passes at 128 tokens, 1.06–1.17× at 512).
 */
// @ts-ignore: decorator
@inline function q4_0HalfPass(w: usize, wEnd: usize, scales: usize, y: usize, o: usize, stride: usize, count: i32, split: bool): void {
  const mask = i8x16.splat(0x0f);
  const zero = f32x4.splat(0);
  const step = <usize>count * RECORD;
  let lo0 = zero, lo1 = zero, lo2 = zero, lo3 = zero;
  let hi0 = zero, hi1 = zero, hi2 = zero, hi3 = zero;
  for (let x = w; x < wEnd; x += split ? Q4_0_SPLIT_BLOCK : Q4_0X16_BLOCK, y += step) {
    let l0 = q4Start(y);
    let h0 = l0;
    let l1 = q4Start(y + RECORD);
    let h1 = l1;
    let l2 = count > 2 ? q4Start(y + 2 * RECORD) : zero;
    let h2 = l2;
    let l3 = count > 3 ? q4Start(y + 3 * RECORD) : zero;
    let h3 = l3;
    let yk = y;
    for (let p = x; p < x + (split ? Q4_0_SPLIT_BLOCK : Q4_0_HALF_NIBBLES); p += split ? 32 : 16, yk += 4) {
      const chunk = v128.load(p);
      const low = split ? chunk : v128.and(chunk, mask);
      const high = split ? v128.load(p, 16) : highNibbles(chunk, mask);
      let splat = v128.load32_splat(yk);
      l0 = dotAcc(l0, low, splat);
      h0 = dotAcc(h0, high, splat);
      splat = v128.load32_splat(yk, RECORD);
      l1 = dotAcc(l1, low, splat);
      h1 = dotAcc(h1, high, splat);
      if (count > 2) {
        splat = v128.load32_splat(yk, 2 * RECORD);
        l2 = dotAcc(l2, low, splat);
        h2 = dotAcc(h2, high, splat);
      }
      if (count > 3) {
        splat = v128.load32_splat(yk, 3 * RECORD);
        l3 = dotAcc(l3, low, splat);
        h3 = dotAcc(h3, high, splat);
      }
    }
    // the block's scales: beside its nibbles, or (split) the b-th block's of the half
    const d = split ? scales + ((x - w) / Q4_0_SPLIT_BLOCK) * Q4_0X16_BLOCK : x + scales;
    const dLow = halvesScaledDown4(d);
    const dHigh = halvesScaledDown4(d + 8);
    lo0 = q4Finish(lo0, l0, dLow, y);
    hi0 = q4Finish(hi0, h0, dHigh, y);
    lo1 = q4Finish(lo1, l1, dLow, y + RECORD);
    hi1 = q4Finish(hi1, h1, dHigh, y + RECORD);
    if (count > 2) {
      lo2 = q4Finish(lo2, l2, dLow, y + 2 * RECORD);
      hi2 = q4Finish(hi2, h2, dHigh, y + 2 * RECORD);
    }
    if (count > 3) {
      lo3 = q4Finish(lo3, l3, dLow, y + 3 * RECORD);
      hi3 = q4Finish(hi3, h3, dHigh, y + 3 * RECORD);
    }
  }
  storeEight(o, lo0, hi0);
  storeEight(o + stride, lo1, hi1);
  if (count > 2) storeEight(o + 2 * stride, lo2, hi2);
  if (count > 3) storeEight(o + 3 * stride, lo3, hi3);
}

/** Eight rows' outputs for one token: rows 0–3 (low) and 4–7 (high) at o. */
// @ts-ignore: decorator
@inline function storeEight(o: usize, low: v128, high: v128): void {
  v128.store(o, low);
  v128.store(o, high, 16);
}

// ---- Q4_K against standard Q8_K activations (d f32 | qs[256] | bsums[16] i16, 292 bytes a block) ----

/**
 * Q4_K repacked, the file's own size: per group of eight rows and per super-block, d ×8 and −dmin ×8 (f16,
 * as the file has them), the 6-bit scales as bytes [sub-block][row], the mins as bytes [pair][row][2]
 * (widened to i16 pairs when used), then the nibbles, 128 bytes a sub-block: the sub-block's chunk k,
 * v128 k, holds its elements 4k … 4k + 3 of rows 0–3 in the low nibbles (byte 4·row + element) and of
 * rows 4–7 in the high nibbles. Both nibbles meet the same four activations, so one broadcast serves
 * eight rows. (Four rows a group, with a byte's nibbles in sub-blocks 2c and 2c + 1 of one row as the
 * file has them, needed a broadcast for each nibble: single tokens ran at 0.82–0.88× this.)
 */
const Q4_KX8_BLOCK: usize = 1184;
const Q4_K_SCALES: usize = 32;
const Q4_K_MINS: usize = 96;
const Q4_K_NIBBLES: usize = 160;
const Q8_K_BYTES: usize = 292;

/** get_scale_min_k4's scale (min = false) or min of sub-block j from the 12 bytes at p. */
// @ts-ignore: decorator
@inline function k4Field(p: usize, j: usize, min: bool): u32 {
  if (j < 4) return <u32>load<u8>(p + j + (min ? 4 : 0)) & 63;
  return min
    ? (<u32>load<u8>(p + j + 4) >> 4) | ((<u32>load<u8>(p + j) >> 6) << 4)
    : (<u32>load<u8>(p + j + 4) & 0xf) | ((<u32>load<u8>(p + j - 4) >> 6) << 4);
}

export function repack_q4_kx8(src: usize, dst: usize, rows: i32, n: i32): void {
  const blocks = <usize>(n / 256);
  for (let g: usize = 0; g < <usize>(rows >> 3); g++) {
    for (let b: usize = 0; b < blocks; b++) {
      const to = dst + (g * blocks + b) * Q4_KX8_BLOCK;
      for (let r: usize = 0; r < 8; r++) {
        const from = src + ((g * 8 + r) * blocks + b) * 144;
        store<u16>(to + (r << 1), load<u16>(from));
        store<u16>(to + 16 + (r << 1), load<u16>(from + 2) ^ 0x8000);
        for (let j: usize = 0; j < 8; j++) {
          store<u8>(to + Q4_K_SCALES + 8 * j + r, <u8>k4Field(from + 4, j, false));
          store<u8>(to + Q4_K_MINS + 16 * (j >> 1) + 2 * r + (j & 1), <u8>k4Field(from + 4, j, true));
        }
      }
      // sub-block j's chunk k, rows r and r + 4: the file keeps elements 4k … 4k + 3 of sub-block j in bytes
      // 32·(j >> 1) + 4k … of each row, in the low nibbles for even j and the high ones for odd j
      for (let r: usize = 0; r < 4; r++) {
        const low = src + ((g * 8 + r) * blocks + b) * 144 + 16;
        const high = low + 4 * blocks * 144;
        for (let j: usize = 0; j < 8; j++) {
          const shift = <u32>(4 * (j & 1));
          for (let k: usize = 0; k < 8; k++) {
            const at = 32 * (j >> 1) + 4 * k;
            const lowLevels = (load<u32>(low + at) >> shift) & 0x0f0f0f0f;
            const highLevels = (load<u32>(high + at) >> shift) & 0x0f0f0f0f;
            store<u32>(to + Q4_K_NIBBLES + 128 * j + 16 * k + 4 * r, lowLevels | (highLevels << 4));
          }
        }
      }
    }
  }
}

/** One pair of sub-blocks' mins for four rows, bytes [row][2] at p, as i16 lanes. */
// @ts-ignore: decorator
@inline function minPairs(p: usize): v128 {
  return i16x8.extend_low_i8x16_u(v128.load64_zero(p));
}

/**
 * dotAcc's sums s times each row's scale, one i32 per row; `scales` holds one sub-block's scales of eight
 * rows as i16 lanes, rows 0–3 (low) or 4–7 used. Under relaxed SIMD one i16 pair dot does the row totals and
 * the products together (each row's scale in both of its lanes; |s lane| ≤ 16·15·128 and scales ≤ 63, so
 * the i32 sums are exact), in place of two widenings, a pair sum and an i32 multiply.
 */
// @ts-ignore: decorator
@inline function scaledRowTotals(s: v128, scales: v128, low: bool): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const pairs = low ? v128.shuffle<i16>(scales, scales, 0, 0, 1, 1, 2, 2, 3, 3) : v128.shuffle<i16>(scales, scales, 4, 4, 5, 5, 6, 6, 7, 7);
    return i32x4.dot_i16x8_s(s, pairs);
  }
  return i32x4.mul(s, low ? i32x4.extend_low_i16x8_u(scales) : i32x4.extend_high_i16x8_u(scales));
}

/**
 * A super-block's end for one token and four rows (half 0 or 1 of the group): Σ min·(sub-block sum of y)
 * from the activations' sub-block sums (i16, `sums`), then both terms scaled into acc.
 */
// @ts-ignore: decorator
@inline function q4kFinish(acc: v128, isum: v128, x: usize, half: usize, sums: v128, dy: v128): v128 {
  const mins = x + Q4_K_MINS + 8 * half;
  let msum = i32x4.dot_i16x8_s(minPairs(mins), v128.shuffle<i32>(sums, sums, 0, 0, 0, 0));
  msum = i32x4.add(msum, i32x4.dot_i16x8_s(minPairs(mins + 16), v128.shuffle<i32>(sums, sums, 1, 1, 1, 1)));
  msum = i32x4.add(msum, i32x4.dot_i16x8_s(minPairs(mins + 32), v128.shuffle<i32>(sums, sums, 2, 2, 2, 2)));
  msum = i32x4.add(msum, i32x4.dot_i16x8_s(minPairs(mins + 48), v128.shuffle<i32>(sums, sums, 3, 3, 3, 3)));
  const withScales = fuseLanes(acc, isum, f32x4.mul(halves4(x + 8 * half), dy));
  return fuseLanes(withScales, msum, f32x4.mul(halves4(x + 16 + 8 * half), dy));
}

/** The eight sub-block sums of a Q8_K block's activations at y as i16 lanes (|Σ| ≤ 32·128). */
// @ts-ignore: decorator
@inline function q8kSubBlockSums(y: usize): v128 {
  return i16x8.narrow_i32x4_s(i32x4.extadd_pairwise_i16x8_s(v128.load(y + 260)), i32x4.extadd_pairwise_i16x8_s(v128.load(y + 276)));
}

/**
 * A row group's sums for `count` (2 or 3, a constant where inlined) tokens at once, whose activations start
 * at y, tokenBytes apart, into rows o, o + stride, …: each chunk of nibbles is loaded and split once for
 * all of them, and each activation broadcast serves eight rows. (Two tokens a pass ran at 0.91–0.96× this
 * at 16 to 512 tokens, single thread, same outputs.)
 */
// @ts-ignore: decorator
@inline function q4kPass(w: usize, blocks: usize, y: usize, tokenBytes: usize, o: usize, stride: usize, count: i32): void {
  const mask = i8x16.splat(0x0f);
  const zero = f32x4.splat(0);
  let acc0 = zero, acc1 = zero, acc2 = zero, acc3 = zero, acc4 = zero, acc5 = zero;
  for (let b: usize = 0; b < blocks; b++) {
    const x = w + b * Q4_KX8_BLOCK;
    const y0 = y + b * Q8_K_BYTES;
    const y1 = y0 + tokenBytes;
    const y2 = y1 + tokenBytes;
    let isum0 = zero, isum1 = zero, isum2 = zero, isum3 = zero, isum4 = zero, isum5 = zero;
    // sub-block by sub-block: nibbles q, the tokens' activations p (tokenBytes apart), the scales
    for (let q = x + Q4_K_NIBBLES, p = y0 + 4, scales = x + Q4_K_SCALES; scales < x + Q4_K_MINS; scales += 8) {
      let lo0 = zero, hi0 = zero, lo1 = zero, hi1 = zero, lo2 = zero, hi2 = zero;
      for (const chunksEnd = q + 128; q < chunksEnd; q += 16, p += 4) {
        const nibbles = v128.load(q);
        const low = v128.and(nibbles, mask);
        const high = highNibbles(nibbles, mask);
        let splat = v128.load32_splat(p);
        lo0 = dotAcc(lo0, low, splat);
        hi0 = dotAcc(hi0, high, splat);
        splat = v128.load32_splat(p + tokenBytes);
        lo1 = dotAcc(lo1, low, splat);
        hi1 = dotAcc(hi1, high, splat);
        if (count > 2) {
          splat = v128.load32_splat(p + 2 * tokenBytes);
          lo2 = dotAcc(lo2, low, splat);
          hi2 = dotAcc(hi2, high, splat);
        }
      }
      const scale = v128.load8x8_u(scales);
      isum0 = i32x4.add(isum0, scaledRowTotals(lo0, scale, true));
      isum1 = i32x4.add(isum1, scaledRowTotals(hi0, scale, false));
      isum2 = i32x4.add(isum2, scaledRowTotals(lo1, scale, true));
      isum3 = i32x4.add(isum3, scaledRowTotals(hi1, scale, false));
      if (count > 2) {
        isum4 = i32x4.add(isum4, scaledRowTotals(lo2, scale, true));
        isum5 = i32x4.add(isum5, scaledRowTotals(hi2, scale, false));
      }
    }
    let sums = q8kSubBlockSums(y0), dy = v128.load32_splat(y0);
    acc0 = q4kFinish(acc0, isum0, x, 0, sums, dy);
    acc1 = q4kFinish(acc1, isum1, x, 1, sums, dy);
    sums = q8kSubBlockSums(y1);
    dy = v128.load32_splat(y1);
    acc2 = q4kFinish(acc2, isum2, x, 0, sums, dy);
    acc3 = q4kFinish(acc3, isum3, x, 1, sums, dy);
    if (count > 2) {
      sums = q8kSubBlockSums(y2);
      dy = v128.load32_splat(y2);
      acc4 = q4kFinish(acc4, isum4, x, 0, sums, dy);
      acc5 = q4kFinish(acc5, isum5, x, 1, sums, dy);
    }
  }
  storeEight(o, acc0, acc1);
  storeEight(o + stride, acc2, acc3);
  if (count > 2) storeEight(o + 2 * stride, acc4, acc5);
}

/**
 * out[t·outStride + r] for rows 8·first … 8·end − 1 and tokens 0 … tokens − 1: Q4_Kx8 weights · standard
 * Q8_K activations. Prompt batches go three tokens a pass (q4kPass), then two or one.
 */
export function gemm_q4_kx8(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32): void {
  const blocks = <usize>(n / 256);
  const mask = i8x16.splat(0x0f);
  const groupBytes = blocks * Q4_KX8_BLOCK;
  const stride = <usize>outStride << 2;
  const tokenBytes = blocks * Q8_K_BYTES;
  for (let g = <usize>first; g < <usize>end; g++) {
    const w = weights + g * groupBytes;
    const o = out + (g << 5);
    let t: usize = 0;
    for (; t + 3 <= <usize>tokens; t += 3) q4kPass(w, blocks, acts + t * tokenBytes, tokenBytes, o + t * stride, stride, 3);
    if (t + 2 <= <usize>tokens) {
      q4kPass(w, blocks, acts + t * tokenBytes, tokenBytes, o + t * stride, stride, 2);
      t += 2;
    }
    if (t < <usize>tokens) {
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
      for (let b: usize = 0; b < blocks; b++) {
        const x = w + b * Q4_KX8_BLOCK;
        const y = acts + t * tokenBytes + b * Q8_K_BYTES;
        let isum0 = i32x4.splat(0), isum1 = i32x4.splat(0);
        for (let q = x + Q4_K_NIBBLES, py = y + 4, scales = x + Q4_K_SCALES; scales < x + Q4_K_MINS; scales += 8) {
          let lo = v128.splat<i32>(0), hi = v128.splat<i32>(0);
          // two chunks a pass, stepping the pointers on rather than indexing them
          for (const chunksEnd = q + 128; q < chunksEnd; q += 32, py += 8) {
            const p = v128.load(q);
            const s = v128.load32_splat(py);
            lo = dotAcc(lo, v128.and(p, mask), s);
            hi = dotAcc(hi, highNibbles(p, mask), s);
            const r = v128.load(q, 16);
            const u = v128.load32_splat(py, 4);
            lo = dotAcc(lo, v128.and(r, mask), u);
            hi = dotAcc(hi, highNibbles(r, mask), u);
          }
          const scale = v128.load8x8_u(scales);
          isum0 = i32x4.add(isum0, scaledRowTotals(lo, scale, true));
          isum1 = i32x4.add(isum1, scaledRowTotals(hi, scale, false));
        }
        const sums = q8kSubBlockSums(y), dy = v128.load32_splat(y);
        acc0 = q4kFinish(acc0, isum0, x, 0, sums, dy);
        acc1 = q4kFinish(acc1, isum1, x, 1, sums, dy);
      }
      storeEight(o + t * stride, acc0, acc1);
    }
  }
}

// ---- Q6_K against standard Q8_K activations ----

/**
 * Q6_K repacked, the file's 840 bytes per group of four rows and super-block: d ×4 (f16), the sixteen i8
 * scales as bytes [sub-block][row], then the levels q + 32 (0..63), 48 bytes a sub-block. Chunk k of a
 * sub-block is elements 4k … 4k + 3 of each row (16 levels, byte 4·row + element). The sub-block's three
 * vectors hold chunks 0, 1 and 2 in their bytes' low six bits, and chunk 3's bit pairs 0–1, 2–3 and 4–5
 * in their top two: three masks and eight operations a sub-block unpack it. (Levels stored as bytes took
 * 1104 bytes, 31% over the file, for single tokens 1.07–1.15× this speed on one thread; split into nibble
 * and bit-pair planes, unpacking took 0.46× the speed.)
 */
const Q6_KX4_BLOCK: usize = 840;
const Q6_K_SCALES: usize = 8;
const Q6_K_LEVELS: usize = 72;
/** A batch's form of a super-block: d ×4 widened to f32, the scales, then the levels as bytes (64 a sub-block). */
const Q6_KX4_UNPACKED: usize = 1104;
const UNPACKED_SCALES: usize = 16;
const UNPACKED_LEVELS: usize = 80;

export function repack_q6_kx4(src: usize, dst: usize, rows: i32, n: i32): void {
  const blocks = <usize>(n / 256);
  for (let g: usize = 0; g < <usize>(rows >> 2); g++) {
    for (let b: usize = 0; b < blocks; b++) {
      const to = dst + (g * blocks + b) * Q6_KX4_BLOCK;
      for (let r: usize = 0; r < 4; r++) {
        const from = src + ((g * 4 + r) * blocks + b) * 210;
        store<u16>(to + (r << 1), load<u16>(from + 208));
        for (let s: usize = 0; s < 16; s++) store<u8>(to + Q6_K_SCALES + 4 * s + r, load<u8>(from + 192 + s));
        for (let s: usize = 0; s < 16; s++) {
          const c0 = q6kLevelWord(from, 16 * s), c1 = q6kLevelWord(from, 16 * s + 4), c2 = q6kLevelWord(from, 16 * s + 8);
          const c3 = q6kLevelWord(from, 16 * s + 12);
          const at = to + Q6_K_LEVELS + 48 * s + 4 * r;
          store<u32>(at, c0 | ((c3 & 0x03030303) << 6));
          store<u32>(at + 16, c1 | (((c3 >> 2) & 0x03030303) << 6));
          store<u32>(at + 32, c2 | (((c3 >> 4) & 0x03030303) << 6));
        }
      }
    }
  }
}

/**
 * The levels (0 … 63) of elements e … e + 3 (e a multiple of 4) of the standard Q6_K block at p, a byte
 * each: the low four bits from ql, the top two from qh.
 */
// @ts-ignore: decorator
@inline function q6kLevelWord(p: usize, e: usize): u32 {
  const half = e >> 7;
  const quarter = (e & 127) >> 5;
  const l = e & 31;
  const low = (load<u32>(p + 64 * half + l + 32 * (quarter & 1)) >> <u32>(quarter < 2 ? 0 : 4)) & 0x0f0f0f0f;
  const high = (load<u32>(p + 128 + 32 * half + l) >> <u32>(2 * quarter)) & 0x03030303;
  return low | (high << 4);
}

/** Chunk 3 of a packed sub-block, from the top bit pairs of the vectors a, b and c that hold chunks 0, 1 and 2. */
// @ts-ignore: decorator
@inline function q6kChunk3(a: v128, b: v128, c: v128): v128 {
  const low = v128.and(i16x8.shr_u(a, 6), i8x16.splat(0x03));
  const middle = v128.and(i16x8.shr_u(b, 4), i8x16.splat(0x0c));
  const high = v128.and(i16x8.shr_u(c, 2), i8x16.splat(0x30));
  return v128.or(v128.or(low, middle), high);
}

/**
 * The four chunks of a sub-block's levels (0 … 63) · the activations y0 … y3, times the sub-block's scale
 * of each row, one i32 per row. `scales` holds them as i16 pairs, each row's scale in both of its lanes
 * (q6kScalePairs): under relaxed SIMD each dotPair's i16 sums (two pair sums of 63·128 a lane at most)
 * meet them in one pair dot, which also sums the row's lanes.
 */
// @ts-ignore: decorator
@inline function q6kDots(c0: v128, c1: v128, c2: v128, c3: v128, y0: v128, y1: v128, y2: v128, y3: v128, scales: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.add(i32x4.dot_i16x8_s(dotPair(c0, y0, c1, y1), scales), i32x4.dot_i16x8_s(dotPair(c2, y2, c3, y3), scales));
  return i32x4.mul(i32x4.add(dotPair(c0, y0, c1, y1), dotPair(c2, y2, c3, y3)), i32x4.shr_s(scales, 16));
}

/** Sub-block s's scales of four rows, bytes [sub-block][row] at `scales`, as i16 pairs: each row's in both lanes. */
// @ts-ignore: decorator
@inline function q6kScalePairs(scales: usize): v128 {
  const wide = i16x8.extend_low_i8x16_s(v128.load32_zero(scales));
  return v128.shuffle<i16>(wide, wide, 0, 0, 1, 1, 2, 2, 3, 3);
}

/**
 * Where a super-block's integer sums start, one i32 per row: −32 · Σ over its sixteen sub-blocks of
 * scale · (Σy of the sub-block), the levels' offset of 32 taken off once a super-block. Its scales are at
 * `scales` ([sub-block][row]) and the activations' sub-block sums at `sums` (Q8_K's bsums); two
 * sub-blocks a pair dot.
 */
// @ts-ignore: decorator
@inline function q6kStart(scales: usize, sums: usize): v128 {
  let total = i32x4.splat(0);
  for (let s: usize = 0; s < 64; s += 8) total = i32x4.add(total, i32x4.dot_i16x8_s(q6kOffsetPairs(scales + s), v128.load32_splat(sums + (s >> 1))));
  return q6kStartOf(total);
}

/** Two sub-blocks' scales of four rows (bytes [sub-block][row] at p) as i16 pairs, each row's two side by side. */
// @ts-ignore: decorator
@inline function q6kOffsetPairs(p: usize): v128 {
  const wide = v128.load8x8_s(p);
  return v128.shuffle<i16>(wide, wide, 0, 4, 1, 5, 2, 6, 3, 7);
}

/** −32 times a super-block's Σ scale · (Σy of the sub-block): where its integer sums start. */
// @ts-ignore: decorator
@inline function q6kStartOf(total: v128): v128 {
  return i32x4.neg(i32x4.shl(total, 5));
}

/** q6kDots for a packed super-block's sub-block whose 48 bytes of levels are at p. */
// @ts-ignore: decorator
@inline function q6kPackedLevels(p: usize, y0: v128, y1: v128, y2: v128, y3: v128, scales: v128): v128 {
  const a = v128.load(p);
  const b = v128.load(p, 16);
  const c = v128.load(p, 32);
  const six = i8x16.splat(0x3f);
  return q6kDots(v128.and(a, six), v128.and(b, six), v128.and(c, six), q6kChunk3(a, b, c), y0, y1, y2, y3, scales);
}

/** A packed super-block at x → its unpacked form at to. */
// @ts-ignore: decorator
@inline function q6kUnpack(x: usize, to: usize): void {
  v128.store(to, halves4(x));
  memory.copy(to + UNPACKED_SCALES, x + Q6_K_SCALES, 64);
  const six = i8x16.splat(0x3f);
  for (let s: usize = 0; s < 16; s++) {
    const p = x + Q6_K_LEVELS + 48 * s;
    const a = v128.load(p);
    const b = v128.load(p, 16);
    const c = v128.load(p, 32);
    const q = to + UNPACKED_LEVELS + 64 * s;
    v128.store(q, v128.and(a, six));
    v128.store(q, v128.and(b, six), 16);
    v128.store(q, v128.and(c, six), 32);
    v128.store(q, q6kChunk3(a, b, c), 48);
  }
}

/**
 * Σ scale·(q − 32)·y over a row group's unpacked super-blocks at `prepared` for `count` (1 or 2, a constant
 * where inlined) tokens at once, whose activations start at y, tokenBytes apart, into rows o and
 * o + stride: each sub-block's levels and scales are loaded once for both. (A/B single thread, same
 * outputs: one token a pass ran at 0.91–0.94× this, three at 0.94–0.98×, their twelve broadcasts and
 * sums more than the registers hold.)
 */
// @ts-ignore: decorator
@inline function q6kPass(prepared: usize, blocks: usize, y: usize, tokenBytes: usize, o: usize, stride: usize, count: i32): void {
  const zero = f32x4.splat(0);
  let acc0 = zero, acc1 = zero;
  for (let b: usize = 0; b < blocks; b++) {
    const x = prepared + b * Q6_KX4_UNPACKED;
    const y0 = y + b * Q8_K_BYTES;
    const y1 = y0 + tokenBytes;
    // both tokens' starts (q6kStart), each pair of sub-blocks' scales widened once for them
    let isum0 = zero, isum1 = zero;
    for (let s: usize = 0; s < 64; s += 8) {
      const pairs = q6kOffsetPairs(x + UNPACKED_SCALES + s);
      isum0 = i32x4.add(isum0, i32x4.dot_i16x8_s(pairs, v128.load32_splat(y0 + 260 + (s >> 1))));
      if (count > 1) isum1 = i32x4.add(isum1, i32x4.dot_i16x8_s(pairs, v128.load32_splat(y1 + 260 + (s >> 1))));
    }
    isum0 = q6kStartOf(isum0);
    isum1 = q6kStartOf(isum1);
    // sub-blocks by stepping pointers: levels, the scales, the first token's activations
    for (let q = x + UNPACKED_LEVELS, scales = x + UNPACKED_SCALES, ys = y0 + 4; ys < y0 + 260; q += 64, scales += 4, ys += 16) {
      const c0 = v128.load(q), c1 = v128.load(q, 16), c2 = v128.load(q, 32), c3 = v128.load(q, 48);
      const pairs = q6kScalePairs(scales);
      isum0 = i32x4.add(isum0, q6kDots(c0, c1, c2, c3, v128.load32_splat(ys), v128.load32_splat(ys, 4), v128.load32_splat(ys, 8), v128.load32_splat(ys, 12), pairs));
      if (count > 1) {
        const y = ys + tokenBytes;
        isum1 = i32x4.add(isum1, q6kDots(c0, c1, c2, c3, v128.load32_splat(y), v128.load32_splat(y, 4), v128.load32_splat(y, 8), v128.load32_splat(y, 12), pairs));
      }
    }
    const d = v128.load(x);
    acc0 = fuseLanes(acc0, isum0, f32x4.mul(d, v128.load32_splat(y0)));
    if (count > 1) acc1 = fuseLanes(acc1, isum1, f32x4.mul(d, v128.load32_splat(y1)));
  }
  v128.store(o, acc0);
  if (count > 1) v128.store(o + stride, acc1);
}

/** isum + a packed super-block's sub-block: its levels at p and scales at `scales`, its activations at ys. */
// @ts-ignore: decorator
@inline function q6kPackedStep(isum: v128, p: usize, scales: usize, ys: usize): v128 {
  const levels = q6kPackedLevels(p, v128.load32_splat(ys), v128.load32_splat(ys, 4), v128.load32_splat(ys, 8), v128.load32_splat(ys, 12), q6kScalePairs(scales));
  return i32x4.add(isum, levels);
}

/** Σ scale·(q − 32)·y over a packed super-block at x for four rows and one token (activations at y), fused into acc. */
// @ts-ignore: decorator
@inline function q6kPackedSuperBlock(x: usize, y: usize, acc: v128): v128 {
  let isum = q6kStart(x + Q6_K_SCALES, y + 260);
  for (let p = x + Q6_K_LEVELS, scales = x + Q6_K_SCALES, ys = y + 4; ys < y + 260; p += 48, scales += 4, ys += 16) isum = q6kPackedStep(isum, p, scales, ys);
  return fuseLanes(acc, isum, f32x4.mul(halves4(x), v128.load32_splat(y)));
}

/**
 * The gemm contract, rows 4·first … 4·end − 1, for Q6_Kx4 weights against T tokens of standard Q8_K
 * activations. A batch unpacks each row group once into thread `part`'s Q6_KX4_UNPACKED·n/256 bytes just
 * past the activations, and every token reads the levels from there as bytes.
 */
export function gemm_q6_kx4(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32, part: i32): void {
  const blocks = <usize>(n / 256);
  const groupBytes = blocks * Q6_KX4_BLOCK;
  const stride = <usize>outStride << 2;
  let g = <usize>first;
  if (tokens == 1) {
    // one row group a pass: with two, each activation broadcast served eight rows, but the two streams of
    // weights ran at 0.76× one from memory (single thread, 32768 rows, same outputs)
    for (; g < <usize>end; g++) {
      let acc = f32x4.splat(0);
      const w = weights + g * groupBytes;
      for (let b: usize = 0; b < blocks; b++) acc = q6kPackedSuperBlock(w + b * Q6_KX4_BLOCK, acts + b * Q8_K_BYTES, acc);
      v128.store(out + (g << 4), acc);
    }
    return;
  }
  const tokenBytes = blocks * Q8_K_BYTES;
  const prepared = acts + tokenBytes * <usize>tokens + <usize>part * blocks * Q6_KX4_UNPACKED;
  for (; g < <usize>end; g++) {
    const w = weights + g * groupBytes;
    for (let b: usize = 0; b < blocks; b++) q6kUnpack(w + b * Q6_KX4_BLOCK, prepared + b * Q6_KX4_UNPACKED);
    const o = out + (g << 4);
    let t: usize = 0;
    for (; t + 2 <= <usize>tokens; t += 2) q6kPass(prepared, blocks, acts + t * tokenBytes, tokenBytes, o + t * stride, stride, 2);
    if (t + 1 == <usize>tokens) q6kPass(prepared, blocks, acts + t * tokenBytes, tokenBytes, o + t * stride, stride, 1);
  }
}
