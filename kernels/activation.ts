// Element-wise activations in WebAssembly SIMD, bit-identical to src/quant/float-order.ts's ggmlExpf and
// ggmlSilu (ggml's ggml_v_expf / ggml_v_silu for AVX2 + FMA). Needs relaxed SIMD's fused multiply-add;
// without it the host keeps the scalar twin.

import { expf4 } from "./expf";
import { floatToHalf, halfBits4 } from "./half";
import { tanh4 } from "./tanh";

/** Elements per unit of the element-wise range kernels. */
const UNIT: i32 = 1024;

/** out[i] = silu(gate[i]) · up[i] for n a multiple of 4 (ggml_v_silu, then the multiply). */
export function silu_mul(gate: usize, up: usize, out: usize, n: i32): void {
  const one = f32x4.splat(1);
  for (let i: usize = 0; i < <usize>n * 4; i += 16) {
    const x = v128.load(gate + i);
    const silu = f32x4.div(x, f32x4.add(one, expf4(f32x4.neg(x))));
    v128.store(out + i, f32x4.mul(silu, v128.load(up + i)));
  }
}

/** a[i] += b[i] for n elements (f32 sums, as the scalar twin's addInPlace). */
export function add_in_place(a: usize, b: usize, n: i32): void {
  const bytes = <usize>n << 2;
  let i: usize = 0;
  for (; i + 16 <= bytes; i += 16) v128.store(a + i, f32x4.add(v128.load(a + i), v128.load(b + i)));
  for (; i < bytes; i += 4) store<f32>(a + i, load<f32>(a + i) + load<f32>(b + i));
}

/**
 * a[r·n + i] += b[r·bStride + i] for rows first … end − 1 of n values (f32 sums, as add_in_place): a
 * residual add with bStride = n, a bias added to every row with bStride = 0.
 */
export function add_rows_range(b: usize, first: i32, end: i32, a: usize, n: i32, _o: usize, bStride: i32, _s: i32, _part: i32): void {
  for (let r = first; r < end; r++) add_in_place(a + (<usize>(r * n) << 2), b + (<usize>(r * bStride) << 2), n);
}

/** x[i] *= s for elements of units first … end − 1 (f32 products, as the host's Math.fround(x·s)); s comes as its f32 bits. */
export function scale_range(sBits: i32, first: i32, end: i32, x: usize, n: i32, _o: usize, _t: i32, _s: i32, _part: i32): void {
  const s = reinterpret<f32>(sBits);
  const last = min(n, end * UNIT);
  let i = first * UNIT;
  for (; i + 4 <= last; i += 4) {
    const at = x + (<usize>i << 2);
    v128.store(at, f32x4.mul(v128.load(at), f32x4.splat(s)));
  }
  for (; i < last; i++) store<f32>(x + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * s);
}

/** silu_mul for elements of units first … end − 1 (n a multiple of 4), as a range kernel; out may be gate. */
export function silu_mul_range(_unused: usize, first: i32, end: i32, gate: usize, n: i32, out: usize, up: usize, _s: i32, _part: i32): void {
  const from = first * UNIT;
  const last = min(n, end * UNIT);
  if (last > from) silu_mul(gate + (<usize>from << 2), up + (<usize>from << 2), out + (<usize>from << 2), last - from);
}

/**
 * out[i] = gelu(gate[i]) · up[i] for elements of units first … end − 1, through ggml's F16 GELU table
 * (`table`: 65536 f32, the scalar twin's own table copied in): 0 at or below −10, x at or above 10.
 * Four elements at a time: their F16 bits in SIMD (halfBits4), the table read lane by lane.
 */
export function gelu_mul_range(table: usize, first: i32, end: i32, gate: usize, n: i32, out: usize, up: usize, _s: i32, _part: i32): void {
  const last = min(n, end * UNIT);
  let i = first * UNIT;
  for (; i + 4 <= last; i += 4) {
    const at = <usize>i << 2;
    const x = v128.load(gate + at);
    if (!i32x4.all_true(f32x4.eq(x, x))) {
      for (let k = 0; k < 4; k++) geluMulOne(table, gate, out, up, at + (<usize>k << 2));
      continue;
    }
    const h = halfBits4(x);
    let g = f32x4.splat(0);
    g = f32x4.replace_lane(g, 0, load<f32>(table + (<usize>i32x4.extract_lane(h, 0) << 2)));
    g = f32x4.replace_lane(g, 1, load<f32>(table + (<usize>i32x4.extract_lane(h, 1) << 2)));
    g = f32x4.replace_lane(g, 2, load<f32>(table + (<usize>i32x4.extract_lane(h, 2) << 2)));
    g = f32x4.replace_lane(g, 3, load<f32>(table + (<usize>i32x4.extract_lane(h, 3) << 2)));
    g = v128.bitselect(f32x4.splat(0), g, f32x4.le(x, f32x4.splat(-10)));
    g = v128.bitselect(x, g, f32x4.ge(x, f32x4.splat(10)));
    v128.store(out + at, f32x4.mul(g, v128.load(up + at)));
  }
  for (; i < last; i++) geluMulOne(table, gate, out, up, <usize>i << 2);
}

/** One element of gelu_mul_range, as the scalar twin computes it. */
// @ts-ignore: decorator
@inline function geluMulOne(table: usize, gate: usize, out: usize, up: usize, at: usize): void {
  const x = load<f32>(gate + at);
  const g: f32 = x <= -10 ? 0 : x >= 10 ? x : load<f32>(table + (<usize>floatToHalf(x) << 2));
  store<f32>(out + at, g * load<f32>(up + at));
}

/** x[i] = cap·tanh(x[i]/cap) in place for elements of units first … end − 1 (ggml's scale, tanh, scale); cap as f32 bits. */
export function softcap_range(capBits: i32, first: i32, end: i32, x: usize, n: i32, _o: i32, _t: i32, _s: i32, _part: i32): void {
  const cap = reinterpret<f32>(capBits);
  const inv: f32 = <f32>1 / cap;
  const last = min(n, end * UNIT);
  let i = first * UNIT;
  for (; i + 4 <= last; i += 4) {
    const at = x + (<usize>i << 2);
    v128.store(at, f32x4.mul(tanh4(f32x4.mul(v128.load(at), f32x4.splat(inv))), f32x4.splat(cap)));
  }
  for (; i < last; i++) {
    const at = x + (<usize>i << 2);
    store<f32>(at, <f32>Math.tanh(<f64>(load<f32>(at) * inv)) * cap);
  }
}
