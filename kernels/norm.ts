// RMSNorm rows in WebAssembly, bit-identical to the scalar twin (ScalarBackend.rmsNorm, after ggml):
// Σx² of each row in f64 one value at a time (the order is part of the result), then x·scale·gain.

/**
 * Rows first … end − 1 of x (width values each) into out, times gain. eps comes as its f32 bits (the
 * range-kernel signature has no float slot).
 */
export function rms_norm_rows(gain: usize, first: i32, end: i32, x: usize, width: i32, out: usize, epsBits: i32, _outStride: i32): void {
  const eps = reinterpret<f32>(epsBits);
  const bytes = <usize>width << 2;
  for (let r = <usize>first; r < <usize>end; r++) {
    const row = x + r * bytes;
    const o = out + r * bytes;
    let sum: f64 = 0;
    for (let i: usize = 0; i < bytes; i += 4) {
      const v = load<f32>(row + i);
      sum += <f64>(v * v);
    }
    const mean = <f32>(sum / <f64>width);
    const scale = <f32>1 / Mathf.sqrt(mean + eps);
    const scale4 = f32x4.splat(scale);
    let i: usize = 0;
    for (; i + 16 <= bytes; i += 16) v128.store(o + i, f32x4.mul(f32x4.mul(v128.load(row + i), scale4), v128.load(gain + i)));
    for (; i < bytes; i += 4) store<f32>(o + i, load<f32>(row + i) * scale * load<f32>(gain + i));
  }
}
