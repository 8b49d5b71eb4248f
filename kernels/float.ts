// Matrix × matrix for float weights (F32, F16, BF16) against activations already rounded to the
// weight's partner type and widened to f32, bit-identical to the scalar twin's vecDot: ggml's AVX2
// vec_dot order (32 lanes of fused multiply-adds, a fixed reduction, the tail added in f64). Needs
// relaxed SIMD's fused multiply-add; without it the host keeps the scalar twin.

import { halves4 } from "./simd";

const F32: i32 = 0;
const F16: i32 = 1;
const BF16: i32 = 2;

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Four weights at element i of the row at w, widened to f32. */
// @ts-ignore: decorator
@inline function weights4(w: usize, i: usize, kind: i32): v128 {
  if (kind == F32) return v128.load(w + (i << 2));
  if (kind == F16) return halves4(w + (i << 1));
  return i32x4.shl(i32x4.extend_low_i16x8_u(v128.load64_zero(w + (i << 1))), 16);
}

// @ts-ignore: decorator
@inline function weight1(w: usize, i: usize, kind: i32): f32 {
  return f32x4.extract_lane(weights4(w, i, kind), 0);
}

/** One row · one token's activations in ggml's order for `kind`. */
// @ts-ignore: decorator
@inline function dotRow(w: usize, y: usize, n: i32, kind: i32): f32 {
  const np = <usize>(n & ~31);
  let total: f64 = 0;
  if (np > 0) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
    for (let i: usize = 0; i < np; i += 32) {
      const yi = y + (i << 2);
      a0 = madd(weights4(w, i, kind), v128.load(yi), a0);
      a1 = madd(weights4(w, i + 4, kind), v128.load(yi, 16), a1);
      a2 = madd(weights4(w, i + 8, kind), v128.load(yi, 32), a2);
      a3 = madd(weights4(w, i + 12, kind), v128.load(yi, 48), a3);
      a4 = madd(weights4(w, i + 16, kind), v128.load(yi, 64), a4);
      a5 = madd(weights4(w, i + 20, kind), v128.load(yi, 80), a5);
      a6 = madd(weights4(w, i + 24, kind), v128.load(yi, 96), a6);
      a7 = madd(weights4(w, i + 28, kind), v128.load(yi, 112), a7);
    }
    // lanes l of the four 8-lane accumulators folded as (s_l + s_16+l) + (s_8+l + s_24+l), l = 0 … 7
    const low = f32x4.add(f32x4.add(a0, a4), f32x4.add(a2, a6));
    const high = f32x4.add(f32x4.add(a1, a5), f32x4.add(a3, a7));
    const r = f32x4.add(low, high);
    const r0 = f32x4.extract_lane(r, 0), r1 = f32x4.extract_lane(r, 1), r2 = f32x4.extract_lane(r, 2), r3 = f32x4.extract_lane(r, 3);
    // F32 and F16 end with hadd's (r0 + r1) + (r2 + r3); BF16 with hsum_float_8's (r0 + r2) + (r1 + r3)
    total = kind == BF16 ? <f64>((r0 + r2) + (r1 + r3)) : <f64>((r0 + r1) + (r2 + r3));
  }
  for (let i = np; i < <usize>n; i++) total += <f64>(weight1(w, i, kind) * load<f32>(y + (i << 2)));
  return <f32>total;
}

/** Rows first … end − 1 of every token: out[t·outStride + r]; acts holds T rows of n f32 values. */
// @ts-ignore: decorator
@inline function matmulFloat(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32, kind: i32): void {
  const rowBytes = <usize>n << (kind == F32 ? 2 : 1);
  for (let r = <usize>first; r < <usize>end; r++) {
    const w = weights + r * rowBytes;
    for (let t: usize = 0; t < <usize>tokens; t++) {
      store<f32>(out + ((t * <usize>outStride + r) << 2), dotRow(w, acts + ((t * <usize>n) << 2), n, kind));
    }
  }
}

export function matmul_f32(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32): void {
  matmulFloat(weights, first, end, acts, n, out, tokens, outStride, F32);
}

export function matmul_f16(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32): void {
  matmulFloat(weights, first, end, acts, n, out, tokens, outStride, F16);
}

export function matmul_bf16(weights: usize, first: i32, end: i32, acts: usize, n: i32, out: usize, tokens: i32, outStride: i32): void {
  matmulFloat(weights, first, end, acts, n, out, tokens, outStride, BF16);
}
