// ggml_v_expf (AVX2 + FMA flavour) on four lanes, shared by the activation and attention kernels.

// @ts-ignore: decorator
@inline const SHIFT: f32 = 12582912.0; // 0x1.8p23
// @ts-ignore: decorator
@inline const LOG2E: f32 = reinterpret<f32>(0x3fb8aa3b); // 0x1.715476p+0
// @ts-ignore: decorator
@inline const LN2_HI: f32 = reinterpret<f32>(0x3f317200); // 0x1.62e4p-1
// @ts-ignore: decorator
@inline const LN2_LO: f32 = reinterpret<f32>(0x35bfbe8e); // 0x1.7f7d1cp-20
// @ts-ignore: decorator
@inline const P0: f32 = reinterpret<f32>(0x3c072010); // 0x1.0e4020p-7
// @ts-ignore: decorator
@inline const P1: f32 = reinterpret<f32>(0x3d2b9f17); // 0x1.573e2ep-5
// @ts-ignore: decorator
@inline const P2: f32 = reinterpret<f32>(0x3e2aaf33); // 0x1.555e66p-3
// @ts-ignore: decorator
@inline const P3: f32 = reinterpret<f32>(0x3efffedb); // 0x1.fffdb6p-2
// @ts-ignore: decorator
@inline const P4: f32 = reinterpret<f32>(0x3f7ffff6); // 0x1.ffffecp-1

// Without relaxed SIMD these round twice; the host does not call silu_mul from that build.
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
@inline function nmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_nmadd(a, b, c);
  return f32x4.sub(c, f32x4.mul(a, b));
}

/** ggml_v_expf on four lanes. */
// @ts-ignore: decorator
@inline export function expf4(x: v128): v128 {
  const z = madd(x, f32x4.splat(LOG2E), f32x4.splat(SHIFT));
  const n = f32x4.sub(z, f32x4.splat(SHIFT));
  const b = nmadd(n, f32x4.splat(LN2_LO), nmadd(n, f32x4.splat(LN2_HI), x));
  const e = i32x4.shl(z, 23);
  const k = i32x4.add(e, i32x4.splat(0x3f800000));
  const u = f32x4.mul(b, b);
  const j = madd(madd(madd(f32x4.splat(P0), b, f32x4.splat(P1)), u, madd(f32x4.splat(P2), b, f32x4.splat(P3))), u, f32x4.mul(f32x4.splat(P4), b));
  const common = madd(j, k, k);
  const absN = f32x4.abs(n);
  const c = f32x4.gt(absN, f32x4.splat(126));
  if (!v128.any_true(c)) return common;
  const g = v128.and(f32x4.le(n, f32x4.splat(0)), i32x4.splat(0x82000000));
  const s1 = i32x4.add(g, i32x4.splat(0x7f000000));
  const s2 = i32x4.sub(e, g);
  const d = f32x4.gt(absN, f32x4.splat(192));
  const scaled = f32x4.mul(madd(s2, j, s2), s1);
  return v128.bitselect(f32x4.mul(s1, s1), v128.bitselect(scaled, common, c), d);
}

