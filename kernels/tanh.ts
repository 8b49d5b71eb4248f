// tanh rounded to f32 exactly as the host's f64 Math.tanh rounds (the scalar twin's softcap), four lanes at
// a time. A fast f64 tanh, E/(E + 2) with E = expm1(2|a|) from a range-reduced Taylor series, is within
// 2^−50 of the true value; fdlibm's tanh is within 2^−52. Where the fast value lies farther than 2^−44 of
// itself from the midpoint between two f32, both round to the same f32; the other lanes (about one in a
// million) and NaN take Math.tanh itself, and arguments below TINY give themselves.

const LN2_HI: f64 = 6.93147180369123816490e-1; // ln 2's leading bits: k·LN2_HI is exact for the k used here
const LN2_LO: f64 = 1.90821492927058770002e-10;
const INV_LN2: f64 = 1.44269504088896338700e0;
/**
 * Below this |a|, f32(tanh(a)) is a: tanh(a) lies within a²/3 < 2^−25.6 of a, relatively, less than half an
 * f32 step (soft-capped scores and logits are often this small).
 */
const TINY: f64 = 1.0 / 4096;
/** tanh is 1 in f32 from about 9.01 on; clamping keeps e^(2|a|) finite. */
const LARGE: f64 = 10;
/** 1.5·2^52: adding it rounds an f64 of magnitude below 2^51 to an integer, which its low bits then hold. */
const ROUNDING_SHIFT: f64 = 6755399441055744.0;

// @ts-ignore: decorator
@inline function madd2(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f64x2.relaxed_madd(a, b, c);
  return f64x2.add(f64x2.mul(a, b), c);
}

/**
 * The constants below, each in both lanes, as static data: V8 folds a load into the instruction that uses
 * it, where a constant operand took three instructions to build every time.
 */
const CONSTANTS = memory.data<f64>([
  INV_LN2, INV_LN2, ROUNDING_SHIFT, ROUNDING_SHIFT, LN2_HI, LN2_HI, LN2_LO, LN2_LO,
  1.0 / 2.0, 1.0 / 2.0, 1.0, 1.0, 1.0 / 24.0, 1.0 / 24.0, 1.0 / 6.0, 1.0 / 6.0,
  1.0 / 720.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 120.0, 1.0 / 40320.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 5040.0,
  1.0 / 3628800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 362880.0, 1.0 / 479001600.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 39916800.0,
  2.0, 2.0, LARGE, LARGE, TINY, TINY, 5.684341886080802e-14, 5.684341886080802e-14, // 2^−44
], 16);
const C_INV_LN2 = 0, C_SHIFT = 1, C_LN2_HI = 2, C_LN2_LO = 3, C_TERMS = 4, C_TWO = 16, C_LARGE = 17, C_TINY = 18, C_MARGIN = 19;
/** 1.0, the polynomial's second term, which 2^k − 1 also needs. */
const C_ONE = C_TERMS + 1;

/** Constant i of CONSTANTS in both lanes. */
// @ts-ignore: decorator
@inline function constant(i: i32): v128 {
  return v128.load(CONSTANTS + (<usize>i << 4));
}

/** The expm1 polynomial's terms 2j and 2j + 1 as one fused step, 1/(2j + 1)! + r/(2j + 2)!. */
// @ts-ignore: decorator
@inline function termPair(r: v128, j: i32): v128 {
  return madd2(r, constant(C_TERMS + 2 * j), constant(C_TERMS + 2 * j + 1));
}

/**
 * tanh(m) for two lanes m in [0, LARGE], to within 2^−50. expm1 of the reduced argument r (|r| ≤ ln2/2) is
 * r·(1 + r/2 + … + r^11/12!), the terms past it below 2^−51 of it, evaluated by Estrin's scheme: its
 * chains of fused adds are four deep instead of Horner's twelve.
 */
// @ts-ignore: decorator
@inline function tanhMagnitude2(m: v128): v128 {
  const x = f64x2.add(m, m);
  // k = x/ln2 rounded to an integer, kept in the low bits of `shifted` too (ROUNDING_SHIFT's spacing is 1)
  const shifted = f64x2.add(f64x2.mul(x, constant(C_INV_LN2)), constant(C_SHIFT));
  const k = f64x2.sub(shifted, constant(C_SHIFT));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(k, constant(C_LN2_HI))), f64x2.mul(k, constant(C_LN2_LO)));
  const r2 = f64x2.mul(r, r);
  const r4 = f64x2.mul(r2, r2);
  const low = madd2(r4, madd2(r2, termPair(r, 3), termPair(r, 2)), madd2(r2, termPair(r, 1), termPair(r, 0)));
  const p = f64x2.mul(madd2(f64x2.mul(r4, r4), madd2(r2, termPair(r, 5), termPair(r, 4)), low), r);
  // 2^k (ROUNDING_SHIFT's bits end in twelve zeros, which the shift drops), then
  // expm1(2m) = 2^k·expm1(r) + (2^k − 1): exact scaling, one rounding, none lost when k = 0
  const scale = i64x2.shl(i64x2.add(shifted, i64x2.splat(1023)), 52);
  const e = madd2(scale, p, f64x2.sub(scale, constant(C_ONE)));
  return f64x2.div(e, f64x2.add(e, constant(C_TWO)));
}

/** f32(tanh(a)) for two f64 lanes a (promoted f32), still as f64; NaN in a lane the fast path cannot vouch for. */
// @ts-ignore: decorator
@inline function tanhPair(a: v128): v128 {
  const m = f64x2.pmin(f64x2.abs(a), constant(C_LARGE)); // NaN stays NaN and takes Math.tanh
  const t = tanhMagnitude2(m);
  const rounded = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(t));
  // half the f32 spacing in t's binade, and t's distance to the midpoint nearest it
  const half = v128.and(i64x2.sub(t, i64x2.splat(<i64>24 << 52)), i64x2.splat(0x7ff0000000000000));
  const distance = f64x2.abs(f64x2.sub(f64x2.abs(f64x2.sub(t, rounded)), half));
  const safe = f64x2.gt(distance, f64x2.mul(t, constant(C_MARGIN)));
  // the sign of a on the (non-negative) result; unsafe lanes are recomputed, so their value does not matter
  const signed = v128.or(rounded, v128.and(a, i64x2.splat(i64.MIN_VALUE)));
  return v128.bitselect(a, v128.bitselect(signed, f64x2.splat(NaN), safe), f64x2.lt(m, constant(C_TINY)));
}

/**
 * f32(tanh(a)) for the four f32 lanes of a, bit-identical to <f32>Math.tanh(<f64>a) lane by lane (the
 * fast path, with Math.tanh where it cannot vouch for a lane).
 */
export function tanh4(a: v128): v128 {
  const lo = tanhPair(f64x2.promote_low_f32x4(a));
  const hi = tanhPair(f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 0, 1)));
  const out = v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
  if (i32x4.all_true(f32x4.eq(out, out))) return out;
  let slow = f32x4.replace_lane(out, 0, <f32>Math.tanh(<f64>f32x4.extract_lane(a, 0)));
  slow = f32x4.replace_lane(slow, 1, <f32>Math.tanh(<f64>f32x4.extract_lane(a, 1)));
  slow = f32x4.replace_lane(slow, 2, <f32>Math.tanh(<f64>f32x4.extract_lane(a, 2)));
  return f32x4.replace_lane(slow, 3, <f32>Math.tanh(<f64>f32x4.extract_lane(a, 3)));
}
