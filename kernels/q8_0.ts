// Q8_0 weights × Q8_0 activations for any number of tokens, in vec_dot's order. llama.cpp keeps Q8_0
// rows as stored and takes every (row, token) pair through ggml_vec_dot_q8_0_q8_0 or tinyBLAS, both of
// which sum each block's products in eight i32 lanes of four, convert them, and fuse them into eight f32
// accumulators with one scale d = dw·dy; this kernel does the same for a pair of rows at a time, with
// the activations split into |q| and sign masks for relaxed SIMD's i8 × i7 dot. (Measured and dropped:
// four rows or two tokens at a time spill x64's sixteen vector registers; i16 pair dots on widened rows
// save an operation but not time; for batches, a lane select between the quants and their negation
// prepared once (one operation for the sign trick's two) and two blocks an iteration both ran at 0.85×,
// V8 spilling accumulators; the pair sums' constant held in a register changed nothing.)

import { floatToHalf } from "./half";
import { fuseLanes, halfToFloat, halvesScaledDown2, hsum8, q8_0Scale, quads, quantize16, TWO_TO_112 } from "./simd";

const BLOCK: usize = 34;

/**
 * Q8_0 activations as the kernel takes them, 80 bytes a block: |q| (32 bytes), the sign masks of q (32
 * bytes, −1 where q < 0), the f16 scale widened to f32 times 2^112 (the weights' scales come as
 * halvesScaledDown2, times 2^−112), and padding to keep blocks 16-aligned.
 */
const SPLIT: usize = 80;

/**
 * Rows of f32 activations → split Q8_0 blocks (quantize_row_q8_0_ref's arithmetic), blocks first … end − 1
 * only, as a range kernel.
 */
export function quantize_q8_0_split_blocks(_unused: usize, first: i32, end: i32, src: usize, _n: i32, dst: usize, _tokens: i32, _outStride: i32): void {
  for (let b = <usize>first; b < <usize>end; b++) {
    const x = src + b * 128;
    const d = q8_0Scale(x);
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    const y = dst + b * SPLIT;
    const lo = quantize16(x, id);
    const hi = quantize16(x + 64, id);
    v128.store(y, i8x16.abs(lo));
    v128.store(y, i8x16.abs(hi), 16);
    v128.store(y, i8x16.lt_s(lo, i8x16.splat(0)), 32);
    v128.store(y, i8x16.lt_s(hi, i8x16.splat(0)), 48);
    store<f32>(y, halfToFloat(floatToHalf(d)) * TWO_TO_112, 64);
  }
}

/** Rows of f32 activations → standard Q8_0 blocks, as quantize_row_q8_0_ref (the row kernels' layout). */
export function quantize_q8_0_blocks(first: i32, end: i32, src: usize, dst: usize): void {
  for (let b = <usize>first; b < <usize>end; b++) {
    const x = src + b * 128;
    const d = q8_0Scale(x);
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    const y = dst + b * BLOCK;
    store<u16>(y, <u16>floatToHalf(d));
    v128.store(y + 2, quantize16(x, id));
    v128.store(y + 18, quantize16(x + 64, id));
  }
}

/**
 * Σ x·y of 16 signed bytes in four lanes of four (as quads), y given split: |y| and its sign masks.
 * Relaxed SIMD's i8 × i7 dot needs one side in 0…127: it takes |y| against x carrying y's signs. (A weight
 * of −128 against a negative activation wraps; ggml's quantizer never writes one.)
 */
// @ts-ignore: decorator
@inline function signedQuads(x: v128, magnitude: v128, sign: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.sub(v128.xor(x, sign), sign), magnitude));
  }
  return quads(x, i8x16.sub(v128.xor(magnitude, sign), sign));
}

/**
 * Q8_0 repacked two rows at a time ("x2"), the same bytes as the file's rows: a group holds units of four
 * blocks, each the 32 quants of its first row then of its second (one 64-byte line) for every block, then
 * the unit's f16 scales in pairs (16 bytes); a row length that is not a multiple of 128 ends in a shorter
 * unit. One token reads a group as one sequential stream. (With the scales in a plane of their own after
 * the quants, every line of that second stream was a cache miss the prefetcher did not cover: single
 * tokens ran at 0.7× this speed.)
 */
const PAIR: usize = 64;
const UNIT: usize = 4;

/** Standard Q8_0 rows (an even count) → the x2 layout. */
export function repack_q8_0x2(src: usize, dst: usize, rows: i32, n: i32): void {
  const blocks = <usize>(n / 32);
  const rowBytes = blocks * BLOCK;
  for (let g: usize = 0; g < <usize>(rows >> 1); g++) {
    const first = src + 2 * g * rowBytes;
    let to = dst + g * blocks * (PAIR + 4);
    for (let done: usize = 0; done < blocks; done += UNIT) {
      const k = min(UNIT, blocks - done);
      for (let j: usize = 0; j < k; j++) {
        const x0 = first + (done + j) * BLOCK;
        const x1 = x0 + rowBytes;
        const quants = to + j * PAIR;
        v128.store(quants, v128.load(x0, 2));
        v128.store(quants, v128.load(x0, 18), 16);
        v128.store(quants, v128.load(x1, 2), 32);
        v128.store(quants, v128.load(x1, 18), 48);
        store<u16>(to + k * PAIR + (j << 2), load<u16>(x0));
        store<u16>(to + k * PAIR + (j << 2), load<u16>(x1), 2);
      }
      to += k * (PAIR + 4);
    }
  }
}

/**
 * Scratch a thread prepares per row pair of a batch, for all its tokens: the pair's quants as one run
 * (64 bytes a block), then its scales widened (8 bytes a block), so the batch loop meets no unit ends.
 */
const PREPARED: usize = PAIR + 8;

/**
 * A row pair · one token's split activations at y0 → two outputs at out. The pair's quants are at q in
 * units of `unit` blocks, each followed by its f16 scales, as the x2 layout has them; or, where
 * `widened`, in one run whose scales are apart at `scales`, already widened.
 */
// @ts-ignore: decorator
@inline function rowPair(q: usize, unit: usize, widened: bool, scales: usize, blocks: usize, y0: usize, out: usize): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  // pointers step by a block rather than being recomputed from b: V8 does not strength-reduce the products
  let x = q;
  let y = y0;
  let w = scales;
  for (let done: usize = 0; done < blocks; done += unit) {
    const k = min(unit, blocks - done);
    let s = x + k * PAIR;
    const last = s;
    for (; x < last; x += PAIR, y += SPLIT, s += 4, w += 8) {
      const d = f32x4.mul(widened ? v128.load64_zero(w) : halvesScaledDown2(s), v128.load32_splat(y, 64));
      const d0 = v128.shuffle<f32>(d, d, 0, 0, 0, 0);
      const d1 = v128.shuffle<f32>(d, d, 1, 1, 1, 1);
      const loMagnitude = v128.load(y);
      const hiMagnitude = v128.load(y, 16);
      const loSign = v128.load(y, 32);
      const hiSign = v128.load(y, 48);
      a0 = fuseLanes(a0, signedQuads(v128.load(x), loMagnitude, loSign), d0);
      a1 = fuseLanes(a1, signedQuads(v128.load(x, 16), hiMagnitude, hiSign), d0);
      a2 = fuseLanes(a2, signedQuads(v128.load(x, 32), loMagnitude, loSign), d1);
      a3 = fuseLanes(a3, signedQuads(v128.load(x, 48), hiMagnitude, hiSign), d1);
    }
    if (!widened) x += k << 2;
  }
  store<f32>(out, hsum8(a0, a1));
  store<f32>(out, hsum8(a2, a3), 4);
}

/**
 * out[t·outStride + r] for the rows of pairs first … end − 1 and tokens 0 … tokens − 1: Q8_0x2 weights ·
 * split Q8_0 activations (n/32 blocks a token, back to back). For batches, thread `part` prepares each
 * pair in its own PREPARED·n/32 bytes just past the activations.
 */
export function gemm_q8_0x2(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32, part: i32): void {
  const blocks = <usize>(n / 32);
  const groupBytes = blocks * (PAIR + 4);
  const tokenBytes = blocks * SPLIT;
  const stride = <usize>outStride << 2;
  const prepared = acts + tokenBytes * <usize>tokens + <usize>part * blocks * PREPARED;
  for (let g = <usize>first; g < <usize>end; g++) {
    const q = weights + g * groupBytes;
    const o = out + (g << 3);
    if (tokens == 1) {
      rowPair(q, UNIT, false, 0, blocks, acts, o);
      continue;
    }
    const scales = prepared + blocks * PAIR;
    let from = q;
    for (let done: usize = 0; done < blocks; done += UNIT) {
      const k = min(UNIT, blocks - done);
      memory.copy(prepared + done * PAIR, from, k * PAIR);
      for (let j: usize = 0; j < k; j++) v128.store64_lane(scales + ((done + j) << 3), halvesScaledDown2(from + k * PAIR + (j << 2)), 0);
      from += k * (PAIR + 4);
    }
    for (let t: usize = 0; t < <usize>tokens; t++) rowPair(prepared, blocks, true, scales, blocks, acts + t * tokenBytes, o + t * stride);
  }
}
