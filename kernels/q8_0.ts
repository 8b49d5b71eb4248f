// Q8_0 weights × Q8_0 activations for any number of tokens, on weights repacked sixteen rows a group as
// Q4_0's are (interleaved.ts): vector lanes run across four rows, so each block's integer sum is finished
// per row and scaled once per (row, token, block), the order of llama.cpp's repacked kernels
// (blockwiseOrder). Against the pair-of-rows kernel in vec_dot's eight-lane order that this replaced, an
// A/B on 2048 × 2048 ran 1.5× for single tokens and 1.2× for batches: a block's eight chunks need no
// conversion or fused add of their own, and the sign trick loses its subtraction (see rowQuads).

import { floatToHalf } from "./half";
import { fuseLanes, halfToFloat, halvesScaledDown4, q8_0Scale, quads, quadSums, quantize16, scaledQuarter, TWO_TO_112 } from "./simd";

const FILE_BLOCK: usize = 34;

/**
 * Q8_0 activations as the kernel takes them, 80 bytes a block: |q| (32 bytes), the sign masks of q (32
 * bytes, −1 where q < 0), the f16 scale widened to f32 times 2^112 (the weights' scales come as
 * halvesScaledDown4, times 2^−112), Σ |q| over the block's negative q (i32), and padding to keep blocks
 * 16-aligned.
 */
const SPLIT: usize = 80;
const SPLIT_SCALE: usize = 64;
const SPLIT_NEGATIVES: usize = 68;

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
    const loMagnitude = i8x16.abs(lo);
    const hiMagnitude = i8x16.abs(hi);
    const loSign = i8x16.lt_s(lo, i8x16.splat(0));
    const hiSign = i8x16.lt_s(hi, i8x16.splat(0));
    v128.store(y, loMagnitude);
    v128.store(y, hiMagnitude, 16);
    v128.store(y, loSign, 32);
    v128.store(y, hiSign, 48);
    store<f32>(y, halfToFloat(floatToHalf(d)) * TWO_TO_112, SPLIT_SCALE);
    const negatives = i32x4.add(quadSums(v128.and(loMagnitude, loSign)), quadSums(v128.and(hiMagnitude, hiSign)));
    store<i32>(y, i32x4.extract_lane(negatives, 0) + i32x4.extract_lane(negatives, 1) + i32x4.extract_lane(negatives, 2) + i32x4.extract_lane(negatives, 3), SPLIT_NEGATIVES);
  }
}

/** Rows of f32 activations → standard Q8_0 blocks, as quantize_row_q8_0_ref (the row kernels' layout). */
export function quantize_q8_0_blocks(first: i32, end: i32, src: usize, dst: usize): void {
  for (let b = <usize>first; b < <usize>end; b++) {
    const x = src + b * 128;
    const d = q8_0Scale(x);
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    const y = dst + b * FILE_BLOCK;
    store<u16>(y, <u16>floatToHalf(d));
    v128.store(y + 2, quantize16(x, id));
    v128.store(y + 18, quantize16(x + 64, id));
  }
}

/**
 * x → its Q8_0 blocks' values, in place: quantize_row_q8_0_ref, then dequantize_row_q8_0 (n a multiple of
 * 32). A query meets a Q8_0 cache so; the scalar twin is roundQueryForKeys. Each value is an int8 times
 * an F16 scale, exact in f32 as in the twin's arithmetic.
 */
export function round_through_q8_0(x: usize, n: i32): void {
  for (let at = x; at < x + (<usize>n << 2); at += 128) {
    const d = q8_0Scale(at);
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    const scale = f32x4.splat(halfToFloat(floatToHalf(d)));
    const lo = quantize16(at, id);
    const hi = quantize16(at + 64, id);
    storeScaled16(at, lo, scale);
    storeScaled16(at + 64, hi, scale);
  }
}

/** Sixteen int8 lanes times `scale`, as f32 at p. */
// @ts-ignore: decorator
@inline function storeScaled16(p: usize, q: v128, scale: v128): void {
  v128.store(p, scaledQuarter(q, 0, scale));
  v128.store(p, scaledQuarter(q, 1, scale), 16);
  v128.store(p, scaledQuarter(q, 2, scale), 32);
  v128.store(p, scaledQuarter(q, 3, scale), 48);
}

/**
 * A group's block b: four quads of four rows, 128 bytes each (chunk i's v128 holds elements 4i … 4i + 3 of
 * each of the quad's rows), then the sixteen f16 scales, 8 bytes a quad: 544 bytes, the file's 16 × 34.
 */
const QUAD_QUANTS: usize = 128;
const SCALES: usize = 4 * QUAD_QUANTS;
const BLOCK: usize = SCALES + 4 * 8;

/** Standard Q8_0 rows (rows a multiple of 16) → the x16 layout. */
export function repack_q8_0x16(src: usize, dst: usize, rows: i32, n: i32): void {
  const blocks = <usize>(n / 32);
  for (let g: usize = 0; g < <usize>(rows >> 4); g++) {
    for (let b: usize = 0; b < blocks; b++) {
      const block = dst + (g * blocks + b) * BLOCK;
      for (let r: usize = 0; r < 16; r++) {
        const to = block + (r >> 2) * QUAD_QUANTS + ((r & 3) << 2);
        const from = src + ((g * 16 + r) * blocks + b) * FILE_BLOCK;
        store<u16>(block + SCALES + (r << 1), load<u16>(from));
        for (let i: usize = 0; i < 8; i++) store<u32>(to + 16 * i, load<u32>(from + 2 + 4 * i));
      }
    }
  }
}

/**
 * Four rows' sums of four products (lane = row) of signed quants w with one token's four activations,
 * given split as |y| and sign masks, each broadcast to every lane. Relaxed SIMD's i8 × i7 dot needs one
 * side in 0…127: it takes |y| against w with its bits flipped where y < 0, that is −w − 1, so each lane
 * comes out short by Σ |y| over the negative y; blockStart puts that back for the whole block at once.
 */
// @ts-ignore: decorator
@inline function rowQuads(w: v128, magnitude: v128, sign: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(v128.xor(w, sign), magnitude));
  return quads(w, i8x16.sub(v128.xor(magnitude, sign), sign));
}

/** Where a block's integer sums start: what rowQuads leaves out, the same for all four rows. */
// @ts-ignore: decorator
@inline function blockStart(y: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.load32_splat(y + SPLIT_NEGATIVES);
  return i32x4.splat(0);
}

/** rowQuads of chunk i (a constant) of quants at x, with the token's block at y. */
// @ts-ignore: decorator
@inline function chunk(s: v128, x: usize, y: usize, i: usize): v128 {
  return i32x4.add(s, rowQuads(v128.load(x + 16 * i), v128.load32_splat(y + 4 * i), v128.load32_splat(y + 32 + 4 * i)));
}

/** acc = fma(s, dw·dy, acc), dw four rows' scales from halvesScaledDown4. */
// @ts-ignore: decorator
@inline function finish(acc: v128, s: v128, dw: v128, y: usize): v128 {
  return fuseLanes(acc, s, f32x4.mul(dw, v128.load32_splat(y + SPLIT_SCALE)));
}

/**
 * out[t·outStride + r] for rows 16·first … 16·end − 1 and tokens 0 … tokens − 1: Q8_0x16 weights · split
 * Q8_0 activations (n/32 blocks a token, back to back). Batches go two quads and two tokens a pass, so each
 * token's magnitude and sign broadcasts serve eight rows (one quad and four tokens a pass: 0.86–0.88× this,
 * A/B single thread, same outputs).
 */
export function gemm_q8_0x16(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32): void {
  const blocks = <usize>(n / 32);
  const groupBytes = blocks * BLOCK;
  const tokenBytes = blocks * SPLIT;
  const stride = <usize>outStride << 2;
  if (tokens == 1) {
    for (let g = <usize>first; g < <usize>end; g++) {
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let acc2 = f32x4.splat(0);
      let acc3 = f32x4.splat(0);
      let x = weights + g * groupBytes;
      let y = acts;
      for (let b: usize = 0; b < blocks; b++, x += BLOCK, y += SPLIT) {
        const start = blockStart(y);
        let s0 = start, s1 = start, s2 = start, s3 = start;
        for (let i: usize = 0; i < 8; i++) {
          const magnitude = v128.load32_splat(y + 4 * i);
          const sign = v128.load32_splat(y + 32 + 4 * i);
          s0 = i32x4.add(s0, rowQuads(v128.load(x + 16 * i), magnitude, sign));
          s1 = i32x4.add(s1, rowQuads(v128.load(x + QUAD_QUANTS + 16 * i), magnitude, sign));
          s2 = i32x4.add(s2, rowQuads(v128.load(x + 2 * QUAD_QUANTS + 16 * i), magnitude, sign));
          s3 = i32x4.add(s3, rowQuads(v128.load(x + 3 * QUAD_QUANTS + 16 * i), magnitude, sign));
        }
        acc0 = finish(acc0, s0, halvesScaledDown4(x + SCALES), y);
        acc1 = finish(acc1, s1, halvesScaledDown4(x + SCALES + 8), y);
        acc2 = finish(acc2, s2, halvesScaledDown4(x + SCALES + 16), y);
        acc3 = finish(acc3, s3, halvesScaledDown4(x + SCALES + 24), y);
      }
      const o = out + (g << 6);
      v128.store(o, acc0);
      v128.store(o, acc1, 16);
      v128.store(o, acc2, 32);
      v128.store(o, acc3, 48);
    }
    return;
  }
  for (let g = <usize>first; g < <usize>end; g++) {
    for (let pair: usize = 0; pair < 2; pair++) {
      const w = weights + g * groupBytes + 2 * pair * QUAD_QUANTS;
      // the pair's eight scales, from its first quad's quants in a block
      const scales = SCALES + 16 * pair - 2 * pair * QUAD_QUANTS;
      const o = out + (g << 6) + (pair << 5);
      let t: usize = 0;
      for (; t + 2 <= <usize>tokens; t += 2) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
        let x = w;
        let y0 = acts + t * tokenBytes;
        for (let b: usize = 0; b < blocks; b++, x += BLOCK, y0 += SPLIT) {
          const y1 = y0 + tokenBytes;
          let sa0 = blockStart(y0), sb0 = sa0, sa1 = blockStart(y1), sb1 = sa1;
          for (let i: usize = 0; i < 8; i++) {
            const qa = v128.load(x + 16 * i);
            const qb = v128.load(x + QUAD_QUANTS + 16 * i);
            let m = v128.load32_splat(y0 + 4 * i);
            let sg = v128.load32_splat(y0 + 32 + 4 * i);
            sa0 = i32x4.add(sa0, rowQuads(qa, m, sg));
            sb0 = i32x4.add(sb0, rowQuads(qb, m, sg));
            m = v128.load32_splat(y1 + 4 * i);
            sg = v128.load32_splat(y1 + 32 + 4 * i);
            sa1 = i32x4.add(sa1, rowQuads(qa, m, sg));
            sb1 = i32x4.add(sb1, rowQuads(qb, m, sg));
          }
          const dwa = halvesScaledDown4(x + scales);
          const dwb = halvesScaledDown4(x + scales + 8);
          a0 = finish(a0, sa0, dwa, y0);
          b0 = finish(b0, sb0, dwb, y0);
          a1 = finish(a1, sa1, dwa, y1);
          b1 = finish(b1, sb1, dwb, y1);
        }
        v128.store(o + t * stride, a0);
        v128.store(o + t * stride, b0, 16);
        v128.store(o + (t + 1) * stride, a1);
        v128.store(o + (t + 1) * stride, b1, 16);
      }
      for (; t < <usize>tokens; t++) {
        for (let quad: usize = 2 * pair; quad < 2 * pair + 2; quad++) {
          const wq = weights + g * groupBytes + quad * QUAD_QUANTS;
          const sq = SCALES + quad * 8 - quad * QUAD_QUANTS;
          let acc = f32x4.splat(0);
          let x = wq;
          let y = acts + t * tokenBytes;
          for (let b: usize = 0; b < blocks; b++, x += BLOCK, y += SPLIT) {
            let s = blockStart(y);
            for (let i: usize = 0; i < 8; i++) s = chunk(s, x, y, i);
            acc = finish(acc, s, halvesScaledDown4(x + sq), y);
          }
          v128.store(out + (g << 6) + (quad << 4) + t * stride, acc);
        }
      }
    }
  }
}
