// f32 → f16 rounding (to nearest even), as the scalar twin's quant/half.ts: one value, or four through F16 and back.

/** f32 → f16 bits, round to nearest even (the scalar twin's floatToHalf). */
export function floatToHalf(value: f32): u32 {
  const w = reinterpret<u32>(value);
  const sign = (w >> 16) & 0x8000;
  const exp = <i32>((w >> 23) & 0xff);
  const mant = w & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant != 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    const shift = 14 - e;
    if (shift > 24) return sign;
    const full = mant | 0x800000;
    let half = full >> <u32>shift;
    const rem = full & ((1 << <u32>shift) - 1);
    const halfway: u32 = 1 << <u32>(shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1) != 0)) half++;
    return sign | half;
  }
  let half = (<u32>e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) half++;
  return sign | half;
}

/**
 * halfToFloat(floatToHalf(x)) on four lanes: round to nearest even at f16's precision. Normal halves
 * round the f32 bits at bit 13; below 2^-14 adding and taking away 0.5 rounds to the subnormal step 2^-24.
 */
// @ts-ignore: decorator
@inline export function roundThroughHalf4(x: v128): v128 {
  const sign = v128.and(x, i32x4.splat(0x80000000));
  const a = v128.xor(x, sign);
  const normal = v128.and(
    i32x4.add(i32x4.add(a, i32x4.splat(0xfff)), v128.and(i32x4.shr_u(a, 13), i32x4.splat(1))),
    i32x4.splat(~0x1fff),
  );
  const half = f32x4.splat(0.5);
  const tiny = f32x4.sub(f32x4.add(a, half), half);
  let r = v128.bitselect(tiny, normal, f32x4.lt(a, f32x4.splat(reinterpret<f32>(0x38800000))));
  r = v128.bitselect(i32x4.splat(0x7f800000), r, i32x4.ge_s(r, i32x4.splat(0x47800000)));
  r = v128.bitselect(x, v128.or(r, sign), f32x4.ne(x, x));
  return r;
}

/**
 * floatToHalf on four lanes, as i32 lanes of 16 bits: the rounded value's f32 bits shifted into F16's
 * place (infinity where they overflow it), or, below 2^-14, its count of F16's subnormal step 2^-24; NaN
 * as floatToHalf gives it.
 */
// @ts-ignore: decorator
@inline export function halfBits4(x: v128): v128 {
  const r = f32x4.abs(roundThroughHalf4(x));
  const normal = i32x4.min_u(i32x4.sub(i32x4.shr_u(r, 13), i32x4.splat((127 - 15) << 10)), i32x4.splat(0x7c00));
  const subnormal = i32x4.trunc_sat_f32x4_s(f32x4.mul(r, f32x4.splat(16777216)));
  let magnitude = v128.bitselect(subnormal, normal, f32x4.lt(r, f32x4.splat(reinterpret<f32>(0x38800000))));
  magnitude = v128.bitselect(i32x4.splat(0x7e00), magnitude, f32x4.ne(x, x));
  return v128.or(magnitude, i32x4.shr_u(v128.and(x, i32x4.splat(0x80000000)), 16));
}
