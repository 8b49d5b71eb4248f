// SIMD building blocks shared by the kernels (not exported from the module).

/** f16 bits → f32: shift into place and rescale by 2^112 (exact for normal and subnormal halves). */
@inline export function halfToFloat(h: u32): f32 {
  const magnitude = reinterpret<f32>((h & 0x7fff) << 13) * reinterpret<f32>(0x77800000); // 2^112
  // The sign goes in by bits, not by a branch: scale signs are random, so a branch mispredicts half the time.
  return reinterpret<f32>(reinterpret<u32>(magnitude) | ((h & 0x8000) << 16));
}

@inline export function loadHalf(ptr: usize): f32 {
  return halfToFloat(<u32>load<u16>(ptr));
}

/** hsum_float_8 of lanes 0..3 in `a` and 4..7 in `b`: (lo + hi), then lanes 0+2 and 1+3, then their sum. */
@inline export function hsum8(a: v128, b: v128): f32 {
  const r = f32x4.add(a, b);
  return (f32x4.extract_lane(r, 0) + f32x4.extract_lane(r, 2)) + (f32x4.extract_lane(r, 1) + f32x4.extract_lane(r, 3));
}

/** Four lane sums of 16 signed bytes × 16 signed bytes: lane l = Σ x[4l..4l+3]·y[4l..4l+3]. */
@inline export function quads(x: v128, y: v128): v128 {
  const a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x), i16x8.extend_low_i8x16_s(y));
  const b = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x), i16x8.extend_high_i8x16_s(y));
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7));
}

/** The same for x in 0..127: relaxed SIMD's i8 × i7 dot (pmaddubsw) is exact there. */
@inline export function quadsUnsigned(x: v128, y: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(y, x));
  return quads(x, y);
}

/** scale · (Σ u·y − 2^shift · Σ y) per group of four, for levels stored as q + 2^shift in u. */
// @ts-ignore: decorator
@inline export function scaledBiasedQuads(u: v128, y: v128, shift: i32, scale: i32): v128 {
  return i32x4.mul(i32x4.sub(quadsUnsigned(u, y), i32x4.shl(quadSums(y), shift)), i32x4.splat(scale));
}

/** Four sums of four consecutive signed bytes. */
@inline export function quadSums(y: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(y));
}

/** acc = fma(lanes, d, acc) with one scale for every lane (see fuseLanes). */
@inline export function fuse(acc: v128, lanes: v128, d: f32): v128 {
  return fuseLanes(acc, lanes, f32x4.splat(d));
}

/**
 * acc = fma(lanes, d, acc) lane by lane with one rounding. With relaxed SIMD this is the hardware FMA
 * (fused on x86-64 and ARM64); without, the sum is taken in f64, which rounds twice: identical except
 * in rare ties.
 */
@inline export function fuseLanes(acc: v128, lanes: v128, d: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(f32x4.convert_i32x4_s(lanes), d, acc);
  const low = f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_s(lanes), f64x2.promote_low_f32x4(d)), f64x2.promote_low_f32x4(acc));
  const high = f64x2.add(
    f64x2.mul(f64x2.convert_low_i32x4_s(v128.shuffle<i32>(lanes, lanes, 2, 3, 0, 1)), f64x2.promote_low_f32x4(v128.shuffle<i32>(d, d, 2, 3, 0, 1))),
    f64x2.promote_low_f32x4(v128.shuffle<i32>(acc, acc, 2, 3, 0, 1)),
  );
  return v128.shuffle<i32>(f32x4.demote_f64x2_zero(low), f32x4.demote_f64x2_zero(high), 0, 1, 4, 5);
}

/**
 * The largest |x| of the 32 f32 at x, and Q8_0's scale d = amax/127 from it. Magnitudes order as their
 * bits do as integers, NaNs above every number, so one integer max a step does what f32 max's sequence
 * for NaN and −0 does in V8.
 */
@inline export function q8_0Scale(x: usize): f32 {
  const noSign = i32x4.splat(0x7fffffff);
  let a = v128.and(v128.load(x), noSign);
  let b = v128.and(v128.load(x, 16), noSign);
  for (let k: usize = 32; k < 128; k += 32) {
    a = i32x4.max_s(a, v128.and(v128.load(x + k), noSign));
    b = i32x4.max_s(b, v128.and(v128.load(x + k, 16), noSign));
  }
  a = i32x4.max_s(a, b);
  a = i32x4.max_s(a, v128.shuffle<i32>(a, a, 2, 3, 0, 1));
  a = i32x4.max_s(a, v128.shuffle<i32>(a, a, 1, 0, 3, 2));
  return reinterpret<f32>(i32x4.extract_lane(a, 0)) / 127;
}

/** 16 f32 at x times id, rounded as C's roundf (half away from zero), narrowed to 16 bytes. */
@inline export function quantize16(x: usize, id: v128): v128 {
  const q0 = roundAway4(f32x4.mul(v128.load(x), id));
  const q1 = roundAway4(f32x4.mul(v128.load(x, 16), id));
  const q2 = roundAway4(f32x4.mul(v128.load(x, 32), id));
  const q3 = roundAway4(f32x4.mul(v128.load(x, 48), id));
  return i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
}

/**
 * C's roundf on four lanes (half away from zero), as i32: x + copysign(0.5 − 2^−25, x), truncated. That
 * equals roundf(x) for every f32 below 2^23 in magnitude (checked over all 2.5·10^9 of them); above, both
 * are x. NaN gives 0 and ±∞ saturate, as before.
 */
@inline export function roundAway4(v: v128): v128 {
  const nudge = v128.or(v128.and(v, i32x4.splat(0x80000000)), f32x4.splat(0.49999997));
  return i32x4.trunc_sat_f32x4_s(f32x4.add(v, nudge));
}

/** 2^112 as f32: an F16's bits shifted into an f32's place are its value times 2^−112. */
export const TWO_TO_112: f32 = reinterpret<f32>(0x77800000);

/**
 * Four F16 values at `p` as f32 lanes times 2^−112, in three instructions: sign-extended, shifted into
 * f32's place, the sign's copies cleared. Exact for normal and subnormal halves (not for inf and NaN).
 */
// @ts-ignore: decorator
@inline export function halvesScaledDown4(p: usize): v128 {
  return v128.and(i32x4.shl(v128.load16x4_s(p), 13), i32x4.splat(0x8fffe000));
}

/** Two F16 values at `p` as halvesScaledDown4 gives them, in lanes 0 and 1. */
// @ts-ignore: decorator
@inline export function halvesScaledDown2(p: usize): v128 {
  return v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(v128.load32_zero(p)), 13), i32x4.splat(0x8fffe000));
}

/** Four F16 values at `p` as f32 (exact for normal and subnormal halves). */
// @ts-ignore: decorator
@inline export function halves4(p: usize): v128 {
  return f32x4.mul(halvesScaledDown4(p), f32x4.splat(TWO_TO_112));
}

/** F16 bits in the low half of four i32 lanes → f32. */
// @ts-ignore: decorator
@inline export function widenHalves(h: v128): v128 {
  const magnitude = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(reinterpret<f32>(0x77800000)));
  return v128.or(magnitude, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** Four int8 quants (lanes of `q` from 4·part) times the block's scale `d`: exact in f32, as dequantizeRow. */
// @ts-ignore: decorator
@inline export function scaledQuarter(q: v128, part: i32, d: v128): v128 {
  const wide = part < 2 ? i16x8.extend_low_i8x16_s(q) : i16x8.extend_high_i8x16_s(q);
  const quarter = (part & 1) == 0 ? i32x4.extend_low_i16x8_s(wide) : i32x4.extend_high_i16x8_s(wide);
  return f32x4.mul(f32x4.convert_i32x4_s(quarter), d);
}
