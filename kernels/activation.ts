// Element-wise activations in WebAssembly SIMD, bit-identical to src/quant/float-order.ts's ggmlExpf and
// ggmlSilu (ggml's ggml_v_expf / ggml_v_silu for AVX2 + FMA). Needs relaxed SIMD's fused multiply-add;
// without it the host keeps the scalar twin.

import { expf4 } from "./expf";

/** out[i] = silu(gate[i]) · up[i] for n a multiple of 4 (ggml_v_silu, then the multiply). */
export function silu_mul(gate: usize, up: usize, out: usize, n: i32): void {
  const one = f32x4.splat(1);
  for (let i: usize = 0; i < <usize>n * 4; i += 16) {
    const x = v128.load(gate + i);
    const silu = f32x4.div(x, f32x4.add(one, expf4(f32x4.neg(x))));
    v128.store(out + i, f32x4.mul(silu, v128.load(up + i)));
  }
}
