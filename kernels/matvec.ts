// WebAssembly SIMD kernels for quantized matrix × vector products.

import { quantize_q8_0_blocks } from "./q8_0";
import { fuse, hsum8, loadHalf, quadSums, quadsUnsigned, scaledBiasedQuads } from "./simd";
//
// Each kernel reproduces, bit for bit, its scalar TypeScript twin in src/quant/ (and so ggml's AVX2 order):
// integer products are summed in groups of four into eight 32-bit lanes per 32-element block, each lane
// is fused into its f32 accumulator with one rounding (as _mm256_fmadd_ps), and the eight lanes are
// reduced in hsum_float_8's order. Built twice: with relaxed SIMD (hardware FMA, pmaddubsw-style dot) and
// with plain SIMD128 as the fallback, selected by ASC_FEATURE_RELAXED_SIMD at compile time.

const Q8_0_SIZE: usize = 34;

/** Activations to Q8_0, as quantize_row_q8_0_ref (see quantize_q8_0_blocks). */
export function quantize_q8_0(src: usize, dst: usize, n: i32): void {
  quantize_q8_0_blocks(0, n / 32, src, dst);
}

const Q4_0_SIZE: usize = 18;

/** Where prepare_q4_0 leaves its per-block bias lanes: just past the Q8_0 activations, 16-aligned. */
// @ts-ignore: decorator
@inline function biasLanes(activations: usize, n: i32): usize {
  return (activations + <usize>(n / 32) * Q8_0_SIZE + 15) & ~(<usize>15);
}

/**
 * Q4_0 and Q5_0 store q + 2^shift (0..15 or 0..31): per group of four, Σ(q − 2^shift)·y = Σq·y − 2^shift·Σy.
 * The bias lanes depend on the activations only, so they are computed once per product, not once per row.
 */
export function prepare_bias(activations: usize, n: i32, shift: i32): void {
  const bias = biasLanes(activations, n);
  for (let b: usize = 0; b < <usize>(n / 32); b++) {
    const y = activations + b * Q8_0_SIZE;
    v128.store(bias + b * 32, i32x4.neg(i32x4.shl(quadSums(v128.load(y, 2)), shift)));
    v128.store(bias + b * 32, i32x4.neg(i32x4.shl(quadSums(v128.load(y, 18)), shift)), 16);
  }
}

/** The fifth bits of 16 elements as 0 or 16, from the u32 qh at `qh` (elements `first`..`first`+15). */
// @ts-ignore: decorator
@inline function fifthBits(qh: usize, first: i32): v128 {
  const bytes = v128.load32_zero(qh);
  const spread = first == 0
    ? i8x16.swizzle(bytes, i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1))
    : i8x16.swizzle(bytes, i8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const bit = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return v128.and(i8x16.ne(v128.and(spread, bit), i8x16.splat(0)), i8x16.splat(16));
}

const Q5_0_SIZE: usize = 22;
const Q4_1_SIZE: usize = 20;
const Q5_1_SIZE: usize = 24;
const Q8_1_SIZE: usize = 36;

/**
 * One row of the symmetric types against Q8_0: unsigned levels (four bits in qs, the fifth from qh when
 * qhOffset is set) with the bias lanes prepare_bias left for these activations.
 */
// @ts-ignore: decorator
@inline function biasedRow(w: usize, blocks: usize, size: usize, qsOffset: usize, qhOffset: usize, activations: usize, bias: usize, out: usize): void {
  const mask = i8x16.splat(0x0f);
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  for (let b: usize = 0; b < blocks; b++) {
    const x = w + b * size;
    const y = activations + b * Q8_0_SIZE;
    const packed = v128.load(x + qsOffset);
    let lo = v128.and(packed, mask);
    let hi = i8x16.shr_u(packed, 4);
    if (qhOffset != 0) {
      lo = v128.or(lo, fifthBits(x + qhOffset, 0));
      hi = v128.or(hi, fifthBits(x + qhOffset, 16));
    }
    const d = loadHalf(x) * loadHalf(y);
    acc0 = fuse(acc0, i32x4.add(quadsUnsigned(lo, v128.load(y, 2)), v128.load(bias + b * 32)), d);
    acc1 = fuse(acc1, i32x4.add(quadsUnsigned(hi, v128.load(y, 18)), v128.load(bias + b * 32, 16)), d);
  }
  store<f32>(out, hsum8(acc0, acc1));
}

/** out[r] = row r of Q4_0 weights · Q8_0 activations (after prepare_bias(…, 3) on the activations). */
export function matvec_q4_0(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 32);
  const bias = biasLanes(activations, n);
  for (let r = first; r < end; r++) biasedRow(weights + <usize>r * blocks * Q4_0_SIZE, blocks, Q4_0_SIZE, 2, 0, activations, bias, out + (<usize>r << 2));
}

/** out[r] = row r of Q5_0 weights · Q8_0 activations (after prepare_bias(…, 4) on the activations). */
export function matvec_q5_0(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 32);
  const bias = biasLanes(activations, n);
  for (let r = first; r < end; r++) biasedRow(weights + <usize>r * blocks * Q5_0_SIZE, blocks, Q5_0_SIZE, 6, 2, activations, bias, out + (<usize>r << 2));
}

/**
 * The "_1" types against Q8_1 (d | s = d·Σq | qs): Σ(q·d + m)·y·dy = d·dy·Σq·y + m·s, the min term summed
 * in one f32 scalar as ggml's AVX2 kernels do.
 */
// @ts-ignore: decorator
@inline function withMinRow(w: usize, blocks: usize, size: usize, qsOffset: usize, qhOffset: usize, activations: usize, out: usize): void {
  const mask = i8x16.splat(0x0f);
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let mins: f32 = 0;
  for (let b: usize = 0; b < blocks; b++) {
    const x = w + b * size;
    const y = activations + b * Q8_1_SIZE;
    mins = mins + loadHalf(x + 2) * loadHalf(y + 2);
    const packed = v128.load(x + qsOffset);
    let lo = v128.and(packed, mask);
    let hi = i8x16.shr_u(packed, 4);
    if (qhOffset != 0) {
      lo = v128.or(lo, fifthBits(x + qhOffset, 0));
      hi = v128.or(hi, fifthBits(x + qhOffset, 16));
    }
    const d = loadHalf(x) * loadHalf(y);
    acc0 = fuse(acc0, quadsUnsigned(lo, v128.load(y, 4)), d);
    acc1 = fuse(acc1, quadsUnsigned(hi, v128.load(y, 20)), d);
  }
  store<f32>(out, hsum8(acc0, acc1) + mins);
}

export function matvec_q4_1(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 32);
  for (let r = first; r < end; r++) withMinRow(weights + <usize>r * blocks * Q4_1_SIZE, blocks, Q4_1_SIZE, 4, 0, activations, out + (<usize>r << 2));
}

export function matvec_q5_1(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 32);
  for (let r = first; r < end; r++) withMinRow(weights + <usize>r * blocks * Q5_1_SIZE, blocks, Q5_1_SIZE, 8, 4, activations, out + (<usize>r << 2));
}

// ---- k-quants: 256-element super-blocks against Q8_K activations (d f32 | qs[256] | bsums[16] i16) ----

const Q8_K_SIZE: usize = 292;
const Q4_K_SIZE: usize = 144;
const Q6_K_SIZE: usize = 210;

/** Sum of the 32 activations of sub-block s (two 16-element bsums). */
@inline function subBlockSum(y: usize, s: usize): i32 {
  return <i32>load<i16>(y + 260 + s * 4) + <i32>load<i16>(y + 262 + s * 4);
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at `p`. */
@inline function scaleK4(p: usize, j: usize): i32 {
  return j < 4 ? <i32>(load<u8>(p + j) & 63) : <i32>((load<u8>(p + j + 4) & 0xf) | ((load<u8>(p + j - 4) >> 6) << 4));
}
@inline function minK4(p: usize, j: usize): i32 {
  return j < 4 ? <i32>(load<u8>(p + j + 4) & 63) : <i32>((load<u8>(p + j + 4) >> 4) | ((load<u8>(p + j) >> 6) << 4));
}

/**
 * Activations to Q8_K, as quantize_row_q8_K_ref: iscale = −127 / (the value of largest magnitude),
 * q = min(127, nearest_int(iscale·x)), d = 1/iscale (f32), and the sum of every sixteen q.
 */
export function quantize_q8_k(src: usize, dst: usize, n: i32): void {
  quantize_q8_k_blocks(0, 0, n / 256, src, 0, dst, 0, 0);
}

/** quantize_q8_k for blocks first … end − 1 only, as a range kernel (threads split long batches). */
export function quantize_q8_k_blocks(_unused: usize, first: i32, end: i32, src: usize, _n: i32, dst: usize, _tokens: i32, _outStride: i32): void {
  for (let b = <usize>first; b < <usize>end; b++) {
    const x = src + b * 1024;
    const y = dst + b * Q8_K_SIZE;
    let amax4 = f32x4.splat(0);
    for (let k: usize = 0; k < 1024; k += 16) amax4 = f32x4.max(amax4, f32x4.abs(v128.load(x + k)));
    const amax = max(max(f32x4.extract_lane(amax4, 0), f32x4.extract_lane(amax4, 1)), max(f32x4.extract_lane(amax4, 2), f32x4.extract_lane(amax4, 3)));
    if (amax == 0) {
      memory.fill(y, 0, Q8_K_SIZE);
      continue;
    }
    let signed: f32 = 0;
    for (let k: usize = 0; k < 256; k++) {
      const v = load<f32>(x + (k << 2));
      if (abs(v) == amax) {
        signed = v; // the first element of largest magnitude, as the reference's strict `>` scan keeps
        break;
      }
    }
    const iscale: f32 = -127 / signed;
    const scale = f32x4.splat(iscale);
    const top = i32x4.splat(127);
    for (let k: usize = 0; k < 256; k += 16) {
      const q0 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(scale, v128.load(x + (k << 2))))), top);
      const q1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(scale, v128.load(x + (k << 2), 16)))), top);
      const q2 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(scale, v128.load(x + (k << 2), 32)))), top);
      const q3 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(scale, v128.load(x + (k << 2), 48)))), top);
      v128.store(y + 4 + k, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
      const sums = i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3));
      const total = i32x4.extract_lane(sums, 0) + i32x4.extract_lane(sums, 1) + i32x4.extract_lane(sums, 2) + i32x4.extract_lane(sums, 3);
      store<i16>(y + 260 + (k >> 3), <i16>total);
    }
    store<f32>(y, <f32>1 / iscale);
  }
}

/** out[r] = row r of Q4_K weights · Q8_K activations. */
export function matvec_q4_k(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 256);
  const rowBytes = blocks * Q4_K_SIZE;
  const mask = i8x16.splat(0x0f);
  for (let r = first; r < end; r++) {
    const w = weights + <usize>r * rowBytes;
    let acc0 = f32x4.splat(0);
    let acc1 = f32x4.splat(0);
    let minAcc = f32x4.splat(0);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q4_K_SIZE;
      const y = activations + b * Q8_K_SIZE;
      const yd = load<f32>(y);
      const scales = x + 4;
      let sumi0 = i32x4.splat(0);
      let sumi1 = i32x4.splat(0);
      for (let c: usize = 0; c < 4; c++) {
        const q0 = v128.load(x + 16 + 32 * c);
        const q1 = v128.load(x + 16 + 32 * c, 16);
        const yc = y + 4 + 64 * c;
        const low = i32x4.splat(scaleK4(scales, 2 * c));
        const high = i32x4.splat(scaleK4(scales, 2 * c + 1));
        sumi0 = i32x4.add(sumi0, i32x4.mul(quadsUnsigned(v128.and(q0, mask), v128.load(yc)), low));
        sumi1 = i32x4.add(sumi1, i32x4.mul(quadsUnsigned(v128.and(q1, mask), v128.load(yc, 16)), low));
        sumi0 = i32x4.add(sumi0, i32x4.mul(quadsUnsigned(i8x16.shr_u(q0, 4), v128.load(yc, 32)), high));
        sumi1 = i32x4.add(sumi1, i32x4.mul(quadsUnsigned(i8x16.shr_u(q1, 4), v128.load(yc, 48)), high));
      }
      // Four min lanes: lane l holds sub-blocks 2l and 2l+1 (ggml's _mm_madd_epi16 over mins × sums).
      let terms = i32x4.splat(0);
      terms = i32x4.replace_lane(terms, 0, minK4(scales, 0) * subBlockSum(y, 0) + minK4(scales, 1) * subBlockSum(y, 1));
      terms = i32x4.replace_lane(terms, 1, minK4(scales, 2) * subBlockSum(y, 2) + minK4(scales, 3) * subBlockSum(y, 3));
      terms = i32x4.replace_lane(terms, 2, minK4(scales, 4) * subBlockSum(y, 4) + minK4(scales, 5) * subBlockSum(y, 5));
      terms = i32x4.replace_lane(terms, 3, minK4(scales, 6) * subBlockSum(y, 6) + minK4(scales, 7) * subBlockSum(y, 7));
      minAcc = fuse(minAcc, terms, -yd * loadHalf(x + 2));
      const d = yd * loadHalf(x);
      acc0 = fuse(acc0, sumi0, d);
      acc1 = fuse(acc1, sumi1, d);
    }
    const mins = (f32x4.extract_lane(minAcc, 0) + f32x4.extract_lane(minAcc, 2)) + (f32x4.extract_lane(minAcc, 1) + f32x4.extract_lane(minAcc, 3));
    store<f32>(out + (<usize>r << 2), hsum8(acc0, acc1) + mins);
  }
}

const Q5_K_SIZE: usize = 176;

/** out[r] = row r of Q5_K weights · Q8_K activations (levels 0..31: four bits in qs, the fifth in qh). */
export function matvec_q5_k(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 256);
  const rowBytes = blocks * Q5_K_SIZE;
  const mask = i8x16.splat(0x0f);
  const one = i8x16.splat(1);
  for (let r = first; r < end; r++) {
    const w = weights + <usize>r * rowBytes;
    let acc0 = f32x4.splat(0);
    let acc1 = f32x4.splat(0);
    let summs: f32 = 0;
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q5_K_SIZE;
      const y = activations + b * Q8_K_SIZE;
      const yd = load<f32>(y);
      const scales = x + 4;
      const h0 = v128.load(x + 16);
      const h1 = v128.load(x + 16, 16);
      let sumi0 = i32x4.splat(0);
      let sumi1 = i32x4.splat(0);
      for (let c: usize = 0; c < 4; c++) {
        const q0 = v128.load(x + 48 + 32 * c);
        const q1 = v128.load(x + 48 + 32 * c, 16);
        const lowBit = 2 * <i32>c;
        const yc = y + 4 + 64 * c;
        const lo0 = v128.or(v128.and(q0, mask), i8x16.shl(v128.and(i8x16.shr_u(h0, lowBit), one), 4));
        const lo1 = v128.or(v128.and(q1, mask), i8x16.shl(v128.and(i8x16.shr_u(h1, lowBit), one), 4));
        const hi0 = v128.or(i8x16.shr_u(q0, 4), i8x16.shl(v128.and(i8x16.shr_u(h0, lowBit + 1), one), 4));
        const hi1 = v128.or(i8x16.shr_u(q1, 4), i8x16.shl(v128.and(i8x16.shr_u(h1, lowBit + 1), one), 4));
        const low = i32x4.splat(scaleK4(scales, 2 * c));
        const high = i32x4.splat(scaleK4(scales, 2 * c + 1));
        sumi0 = i32x4.add(sumi0, i32x4.mul(quadsUnsigned(lo0, v128.load(yc)), low));
        sumi1 = i32x4.add(sumi1, i32x4.mul(quadsUnsigned(lo1, v128.load(yc, 16)), low));
        sumi0 = i32x4.add(sumi0, i32x4.mul(quadsUnsigned(hi0, v128.load(yc, 32)), high));
        sumi1 = i32x4.add(sumi1, i32x4.mul(quadsUnsigned(hi1, v128.load(yc, 48)), high));
      }
      // ggml's AVX2 Q5_K folds the mins into one scalar: summs += dmin · Σ min·(sub-block sum)
      let total: i32 = 0;
      for (let s: usize = 0; s < 8; s++) total += minK4(scales, s) * subBlockSum(y, s);
      summs = summs + (-yd * loadHalf(x + 2)) * <f32>total;
      const d = yd * loadHalf(x);
      acc0 = fuse(acc0, sumi0, d);
      acc1 = fuse(acc1, sumi1, d);
    }
    store<f32>(out + (<usize>r << 2), hsum8(acc0, acc1) + summs);
  }
}

const Q2_K_SIZE: usize = 84;
const Q3_K_SIZE: usize = 110;

/** out[r] = row r of Q2_K weights · Q8_K activations: 2-bit levels, 4-bit scale and min per 16. */
export function matvec_q2_k(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 256);
  const rowBytes = blocks * Q2_K_SIZE;
  const three = i8x16.splat(3);
  for (let r = first; r < end; r++) {
    const w = weights + <usize>r * rowBytes;
    let acc0 = f32x4.splat(0);
    let acc1 = f32x4.splat(0);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q2_K_SIZE;
      const y = activations + b * Q8_K_SIZE;
      const yd = load<f32>(y);
      // The mins go into the eight lanes first: lane l holds sub-blocks 2l and 2l+1.
      const terms0 = minLanes2(x, y, 0);
      const terms1 = minLanes2(x, y, 8);
      const dminNeg = -yd * loadHalf(x + 82);
      acc0 = fuse(acc0, terms0, dminNeg);
      acc1 = fuse(acc1, terms1, dminNeg);
      let sumi0 = i32x4.splat(0);
      let sumi1 = i32x4.splat(0);
      for (let g: usize = 0; g < 8; g++) {
        const half = g >> 2;
        const shift = 2 * <i32>(g & 3);
        const q0 = v128.and(i8x16.shr_u(v128.load(x + 16 + 32 * half), shift), three);
        const q1 = v128.and(i8x16.shr_u(v128.load(x + 16 + 32 * half, 16), shift), three);
        const yg = y + 4 + 32 * g;
        sumi0 = i32x4.add(sumi0, i32x4.mul(quadsUnsigned(q0, v128.load(yg)), i32x4.splat(<i32>(load<u8>(x + 2 * g) & 0xf))));
        sumi1 = i32x4.add(sumi1, i32x4.mul(quadsUnsigned(q1, v128.load(yg, 16)), i32x4.splat(<i32>(load<u8>(x + 2 * g + 1) & 0xf))));
      }
      const d = yd * loadHalf(x + 80);
      acc0 = fuse(acc0, sumi0, d);
      acc1 = fuse(acc1, sumi1, d);
    }
    store<f32>(out + (<usize>r << 2), hsum8(acc0, acc1));
  }
}

/** Four min lanes of Q2_K from sub-block `first` on: lane l = term(first + 2l) + term(first + 2l + 1). */
// @ts-ignore: decorator
@inline function minLanes2(x: usize, y: usize, first: i32): v128 {
  const t0 = minTerm2(x, y, first) + minTerm2(x, y, first + 1);
  const t1 = minTerm2(x, y, first + 2) + minTerm2(x, y, first + 3);
  const t2 = minTerm2(x, y, first + 4) + minTerm2(x, y, first + 5);
  const t3 = minTerm2(x, y, first + 6) + minTerm2(x, y, first + 7);
  return i32x4.replace_lane(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(t0), 1, t1), 2, t2), 3, t3);
}

/** Q2_K sub-block s's min times the sum of its sixteen activations. */
// @ts-ignore: decorator
@inline function minTerm2(x: usize, y: usize, s: i32): i32 {
  return <i32>(load<u8>(x + <usize>s) >> 4) * <i32>load<i16>(y + 260 + (<usize>s << 1));
}

/** Q3_K's 6-bit scale j (0..15), signed: low 4 bits in bytes 0..7, high 2 bits in 8..11. */
// @ts-ignore: decorator
@inline function scaleQ3(p: usize, j: usize): i32 {
  const low = j < 8 ? <i32>(load<u8>(p + j) & 0xf) : <i32>(load<u8>(p + j - 8) >> 4);
  const high = <i32>((load<u8>(p + 8 + (j & 3)) >> <u8>(2 * (j >> 2))) & 3);
  return (low | (high << 4)) - 32;
}

/** out[r] = row r of Q3_K weights · Q8_K activations: levels q+4 in 0..7, Σq·y = Σ(q+4)·y − 4·Σy. */
export function matvec_q3_k(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 256);
  const rowBytes = blocks * Q3_K_SIZE;
  const three = i8x16.splat(3);
  const one = i8x16.splat(1);
  for (let r = first; r < end; r++) {
    const w = weights + <usize>r * rowBytes;
    let acc0 = f32x4.splat(0);
    let acc1 = f32x4.splat(0);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q3_K_SIZE;
      const y = activations + b * Q8_K_SIZE;
      let sumi0 = i32x4.splat(0);
      let sumi1 = i32x4.splat(0);
      for (let g: usize = 0; g < 8; g++) {
        const half = g >> 2;
        const j = <i32>(g & 3);
        const bit = 4 * <i32>half + j;
        const u0 = v128.or(
          v128.and(i8x16.shr_u(v128.load(x + 32 + 32 * half), 2 * j), three),
          i8x16.shl(v128.and(i8x16.shr_u(v128.load(x), bit), one), 2),
        );
        const u1 = v128.or(
          v128.and(i8x16.shr_u(v128.load(x + 32 + 32 * half, 16), 2 * j), three),
          i8x16.shl(v128.and(i8x16.shr_u(v128.load(x, 16), bit), one), 2),
        );
        const y0 = v128.load(y + 4 + 32 * g);
        const y1 = v128.load(y + 4 + 32 * g, 16);
        sumi0 = i32x4.add(sumi0, scaledBiasedQuads(u0, y0, 2, scaleQ3(x + 96, 2 * g)));
        sumi1 = i32x4.add(sumi1, scaledBiasedQuads(u1, y1, 2, scaleQ3(x + 96, 2 * g + 1)));
      }
      const d = load<f32>(y) * loadHalf(x + 108);
      acc0 = fuse(acc0, sumi0, d);
      acc1 = fuse(acc1, sumi1, d);
    }
    store<f32>(out + (<usize>r << 2), hsum8(acc0, acc1));
  }
}

/** out[r] = row r of Q6_K weights · Q8_K activations: levels q+32 in 0..63, then Σq·y = Σ(q+32)·y − 32·Σy. */
export function matvec_q6_k(weights: usize, first: i32, end: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 256);
  const rowBytes = blocks * Q6_K_SIZE;
  const low4 = i8x16.splat(0x0f);
  const two = i8x16.splat(3);
  for (let r = first; r < end; r++) {
    const w = weights + <usize>r * rowBytes;
    let acc0 = f32x4.splat(0);
    let acc1 = f32x4.splat(0);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q6_K_SIZE;
      const y = activations + b * Q8_K_SIZE;
      let sumi0 = i32x4.splat(0);
      let sumi1 = i32x4.splat(0);
      for (let g: usize = 0; g < 8; g++) {
        const half = g >> 2;
        const quarter = g & 3;
        const ql = x + 64 * half + (quarter & 1 ? 32 : 0);
        const qh = x + 128 + 32 * half;
        let l0 = v128.load(ql);
        let l1 = v128.load(ql, 16);
        if (quarter >= 2) {
          l0 = i8x16.shr_u(l0, 4);
          l1 = i8x16.shr_u(l1, 4);
        }
        const shift = 2 * <i32>quarter;
        const u0 = v128.or(v128.and(l0, low4), i8x16.shl(v128.and(i8x16.shr_u(v128.load(qh), shift), two), 4));
        const u1 = v128.or(v128.and(l1, low4), i8x16.shl(v128.and(i8x16.shr_u(v128.load(qh, 16), shift), two), 4));
        const y0 = v128.load(y + 4 + 32 * g);
        const y1 = v128.load(y + 4 + 32 * g, 16);
        sumi0 = i32x4.add(sumi0, scaledBiasedQuads(u0, y0, 5, <i32>load<i8>(x + 192 + 2 * g)));
        sumi1 = i32x4.add(sumi1, scaledBiasedQuads(u1, y1, 5, <i32>load<i8>(x + 192 + 2 * g + 1)));
      }
      const d = load<f32>(y) * loadHalf(x + 208);
      acc0 = fuse(acc0, sumi0, d);
      acc1 = fuse(acc1, sumi1, d);
    }
    store<f32>(out + (<usize>r << 2), hsum8(acc0, acc1));
  }
}

/** First byte past the kernels' static data: the host allocates from here up. */
export function heap_base(): usize {
  return __heap_base;
}
