// Attention of one query token over the F16 KV cache, bit-identical to the scalar twin
// (ScalarBackend.attention): ggml's vec_dot order for single tokens (32 lanes, reduced pairwise) or
// tinyBLAS's order for batches (8 lanes, hsum), its vectorised exp in the softmax, and the
// probabilities rounded to F16 before they meet V. Needs relaxed SIMD's fused multiply-add.

import { expf4 } from "./expf";
import { floatToHalf, halfToFloat } from "./half";

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Four F16 values at `p` as f32 (exact: shift into place, rescale by 2^112, sign by bits). */
// @ts-ignore: decorator
@inline function halves4(p: usize): v128 {
  const h = i32x4.extend_low_i16x8_u(v128.load64_zero(p));
  const magnitude = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(reinterpret<f32>(0x77800000)));
  return v128.or(magnitude, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** GGML_F32_VEC_REDUCE of 32 lanes held in eight vectors at `p` (lanes 4a..4a+3 in vector a). */
// @ts-ignore: decorator
@inline function reduce32(a0: v128, a1: v128, a2: v128, a3: v128, a4: v128, a5: v128, a6: v128, a7: v128): f32 {
  const c0 = f32x4.add(f32x4.add(a0, a4), f32x4.add(a2, a6));
  const c1 = f32x4.add(f32x4.add(a1, a5), f32x4.add(a3, a7));
  const d = f32x4.add(c0, c1);
  return (f32x4.extract_lane(d, 0) + f32x4.extract_lane(d, 1)) + (f32x4.extract_lane(d, 2) + f32x4.extract_lane(d, 3));
}

// @ts-ignore: decorator
@inline function hsum8(a: v128, b: v128): f32 {
  const r = f32x4.add(a, b);
  return (f32x4.extract_lane(r, 0) + f32x4.extract_lane(r, 2)) + (f32x4.extract_lane(r, 1) + f32x4.extract_lane(r, 3));
}

/** q (f32, n values) · keys row (F16) in vec_dot (batched = 0) or tinyBLAS (batched = 1) order. */
function dotRow(q: usize, k: usize, n: i32, batched: i32): f32 {
  if (batched) {
    let lo = f32x4.splat(0);
    let hi = f32x4.splat(0);
    for (let i = 0; i < n; i += 8) {
      lo = madd(v128.load(q + (<usize>i << 2)), halves4(k + (<usize>i << 1)), lo);
      hi = madd(v128.load(q + (<usize>i << 2), 16), halves4(k + (<usize>i << 1) + 8), hi);
    }
    return hsum8(lo, hi);
  }
  const np = n & ~31;
  let total: f64 = 0;
  if (np > 0) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
    for (let i = 0; i < np; i += 32) {
      const qi = q + (<usize>i << 2);
      const ki = k + (<usize>i << 1);
      a0 = madd(v128.load(qi), halves4(ki), a0);
      a1 = madd(v128.load(qi, 16), halves4(ki + 8), a1);
      a2 = madd(v128.load(qi, 32), halves4(ki + 16), a2);
      a3 = madd(v128.load(qi, 48), halves4(ki + 24), a3);
      a4 = madd(v128.load(qi, 64), halves4(ki + 32), a4);
      a5 = madd(v128.load(qi, 80), halves4(ki + 40), a5);
      a6 = madd(v128.load(qi, 96), halves4(ki + 48), a6);
      a7 = madd(v128.load(qi, 112), halves4(ki + 56), a7);
    }
    total = <f64>reduce32(a0, a1, a2, a3, a4, a5, a6, a7);
  }
  for (let i = np; i < n; i++) total += <f64>(load<f32>(q + (<usize>i << 2)) * halfToFloat(load<u16>(k + (<usize>i << 1))));
  return <f32>total;
}

/**
 * One query token, every head: out[h] = softmax(q_h·K / √d)·V over cache cells 0..visible−1.
 * `work` holds `cells` probabilities then 32·headDim accumulators (f32).
 */
export function attend_token(
  q: usize, keys: usize, values: usize, out: usize, work: usize,
  visible: i32, cells: i32, heads: i32, kvHeads: i32, headDim: i32, scale: f32, batched: i32,
): void {
  const kvWidth = kvHeads * headDim;
  const group = heads / kvHeads;
  const probs = work;
  const acc = work + (<usize>cells << 2);
  const slots = batched ? 8 : 32;
  const qh16 = acc + (<usize>(slots * headDim) << 2); // q rounded through F16, one head
  for (let h = 0; h < heads; h++) {
    const kvOffset = (h / group) * headDim;
    const qh = q + (<usize>(h * headDim) << 2);
    for (let d = 0; d < headDim; d++) store<f32>(qh16 + (<usize>d << 2), halfToFloat(floatToHalf(load<f32>(qh + (<usize>d << 2)))));
    let max: f32 = -Infinity;
    for (let j = 0; j < visible; j++) {
      const s = dotRow(qh16, keys + (<usize>(j * kvWidth + kvOffset) << 1), headDim, batched) * scale;
      store<f32>(probs + (<usize>j << 2), s);
      if (s > max) max = s;
    }
    let sum: f64 = 0;
    const mx = f32x4.splat(max);
    for (let c = 0; c < cells; c += 8) {
      let lo = f32x4.splat(0);
      let hi = f32x4.splat(0);
      if (c < visible) {
        lo = expf4(f32x4.sub(v128.load(probs + (<usize>c << 2)), mx));
        hi = expf4(f32x4.sub(v128.load(probs + (<usize>c << 2), 16), mx));
        // cells at or past `visible` are masked: their exp is exactly 0
        const index = i32x4.add(i32x4.splat(c), v128(0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0));
        lo = v128.and(lo, i32x4.lt_s(index, i32x4.splat(visible)));
        hi = v128.and(hi, i32x4.lt_s(i32x4.add(index, i32x4.splat(4)), i32x4.splat(visible)));
      }
      v128.store(probs + (<usize>c << 2), lo);
      v128.store(probs + (<usize>c << 2), hi, 16);
      sum += <f64>hsum8(lo, hi);
    }
    const inv = <f32>(1.0 / sum);
    for (let j = 0; j < visible; j++) {
      const p = probs + (<usize>j << 2);
      store<f32>(p, halfToFloat(floatToHalf(load<f32>(p) * inv)));
    }
    // V: slot (j mod slots) accumulates p_j·V_j across all d at once.
    memory.fill(acc, 0, <usize>(slots * headDim) << 2);
    for (let j = 0; j < visible; j++) {
      const pj = f32x4.splat(load<f32>(probs + (<usize>j << 2)));
      const slot = acc + (<usize>((j & (slots - 1)) * headDim) << 2);
      const row = values + (<usize>(j * kvWidth + kvOffset) << 1);
      for (let d = 0; d < headDim; d += 4) {
        const at = slot + (<usize>d << 2);
        v128.store(at, madd(pj, halves4(row + (<usize>d << 1)), v128.load(at)));
      }
    }
    const o = out + (<usize>(h * headDim) << 2);
    for (let d = 0; d < headDim; d += 4) {
      const at = acc + (<usize>d << 2);
      const stride = <usize>headDim << 2;
      let total: v128;
      if (batched) {
        // hsum_float_8 over the eight slots, lane-wise for four d at once
        const r0 = f32x4.add(v128.load(at), v128.load(at + 4 * stride));
        const r1 = f32x4.add(v128.load(at + stride), v128.load(at + 5 * stride));
        const r2 = f32x4.add(v128.load(at + 2 * stride), v128.load(at + 6 * stride));
        const r3 = f32x4.add(v128.load(at + 3 * stride), v128.load(at + 7 * stride));
        total = f32x4.add(f32x4.add(r0, r2), f32x4.add(r1, r3));
      } else {
        // GGML_F32_VEC_REDUCE over the 32 slots: (s_l + s_16+l) + (s_8+l + s_24+l), then the hadd pattern
        let z0 = f32x4.splat(0), z1 = f32x4.splat(0), z2 = f32x4.splat(0), z3 = f32x4.splat(0);
        let z4 = f32x4.splat(0), z5 = f32x4.splat(0), z6 = f32x4.splat(0), z7 = f32x4.splat(0);
        for (let l: usize = 0; l < 8; l++) {
          const x = f32x4.add(v128.load(at + l * stride), v128.load(at + (16 + l) * stride));
          const y = f32x4.add(v128.load(at + (8 + l) * stride), v128.load(at + (24 + l) * stride));
          const z = f32x4.add(x, y);
          if (l == 0) z0 = z;
          else if (l == 1) z1 = z;
          else if (l == 2) z2 = z;
          else if (l == 3) z3 = z;
          else if (l == 4) z4 = z;
          else if (l == 5) z5 = z;
          else if (l == 6) z6 = z;
          else z7 = z;
        }
        const h0 = f32x4.add(f32x4.add(z0, z4), f32x4.add(z1, z5));
        const h1 = f32x4.add(f32x4.add(z2, z6), f32x4.add(z3, z7));
        total = f32x4.add(h0, h1);
      }
      v128.store(o + (<usize>d << 2), total);
    }
  }
}
