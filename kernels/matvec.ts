// WebAssembly SIMD kernels for quantized matrix × vector products.
//
// Each kernel reproduces, bit for bit, its scalar TypeScript twin in src/quant/ (and so ggml's AVX2 order):
// integer products are summed in groups of four into eight 32-bit lanes per 32-element block, each lane
// is fused into its f32 accumulator (a·b + c computed in f64, rounded once to f32), and the eight lanes
// are reduced in hsum_float_8's order.

/** f16 bits → f32: shift into place and rescale by 2^112 (exact for normal and subnormal halves). */
@inline function halfToFloat(h: u32): f32 {
  const magnitude = reinterpret<f32>((h & 0x7fff) << 13) * reinterpret<f32>(0x77800000); // 2^112
  return (h & 0x8000) != 0 ? -magnitude : magnitude;
}

@inline function loadHalf(ptr: usize): f32 {
  return halfToFloat(<u32>load<u16>(ptr));
}

/** Eight lane sums of one 32-byte block: lane l = Σ x[4l..4l+3]·y[4l..4l+3], from signed bytes. */
@inline function laneSums(x0: v128, x1: v128, y0: v128, y1: v128, lanes: usize): void {
  const a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x0), i16x8.extend_low_i8x16_s(y0));
  const b = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x0), i16x8.extend_high_i8x16_s(y0));
  const c = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x1), i16x8.extend_low_i8x16_s(y1));
  const d = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x1), i16x8.extend_high_i8x16_s(y1));
  // a = [b0b1, b2b3, b4b5, b6b7]: lane sums are adjacent pairs of these.
  const low = i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7));
  const high = i32x4.add(v128.shuffle<i32>(c, d, 0, 2, 4, 6), v128.shuffle<i32>(c, d, 1, 3, 5, 7));
  v128.store(lanes, low);
  v128.store(lanes, high, 16);
}

/** acc[l] = f32(d·lane[l] + acc[l]) for the eight lanes, the products exact in f64. */
@inline function fuseLanes(acc: usize, lanes: usize, d: f64): void {
  const dd = f64x2.splat(d);
  for (let k: usize = 0; k < 32; k += 8) {
    const li = v128.load64_zero(lanes + k);
    const products = f64x2.mul(f64x2.convert_low_i32x4_s(li), dd);
    const accumulated = f64x2.promote_low_f32x4(v128.load64_zero(acc + k));
    v128.store64_lane(acc + k, f32x4.demote_f64x2_zero(f64x2.add(products, accumulated)), 0);
  }
}

/** hsum_float_8: (lo4 + hi4), then lanes 0+2 and 1+3, then their sum. */
@inline function hsum8(acc: usize): f32 {
  const r0 = load<f32>(acc) + load<f32>(acc, 16);
  const r1 = load<f32>(acc, 4) + load<f32>(acc, 20);
  const r2 = load<f32>(acc, 8) + load<f32>(acc, 24);
  const r3 = load<f32>(acc, 12) + load<f32>(acc, 28);
  return (r0 + r2) + (r1 + r3);
}

/** Scratch for one dot product: eight i32 lane sums, then eight f32 accumulators. */
const LANES: usize = memory.data(32, 16);
const ACC: usize = memory.data(32, 16);

const Q8_0_SIZE: usize = 34;
const Q4_0_SIZE: usize = 18;

/** out[r] = row r of Q8_0 weights · Q8_0 activations, for `rows` rows of `n` elements. */
export function matvec_q8_0(weights: usize, rows: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 32);
  const rowBytes = blocks * Q8_0_SIZE;
  for (let r = 0; r < rows; r++) {
    const w = weights + <usize>r * rowBytes;
    memory.fill(ACC, 0, 32);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q8_0_SIZE;
      const y = activations + b * Q8_0_SIZE;
      laneSums(v128.load(x, 2), v128.load(x, 18), v128.load(y, 2), v128.load(y, 18), LANES);
      fuseLanes(ACC, LANES, <f64>(loadHalf(x) * loadHalf(y)));
    }
    store<f32>(out + (<usize>r << 2), hsum8(ACC));
  }
}

/** out[r] = row r of Q4_0 weights · Q8_0 activations. */
export function matvec_q4_0(weights: usize, rows: i32, activations: usize, n: i32, out: usize): void {
  const blocks = <usize>(n / 32);
  const rowBytes = blocks * Q4_0_SIZE;
  const mask = i8x16.splat(0x0f);
  const eight = i8x16.splat(8);
  for (let r = 0; r < rows; r++) {
    const w = weights + <usize>r * rowBytes;
    memory.fill(ACC, 0, 32);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q4_0_SIZE;
      const y = activations + b * Q8_0_SIZE;
      const packed = v128.load(x, 2);
      const low = i8x16.sub(v128.and(packed, mask), eight); // elements 0..15
      const high = i8x16.sub(i8x16.shr_u(packed, 4), eight); // elements 16..31
      laneSums(low, high, v128.load(y, 2), v128.load(y, 18), LANES);
      fuseLanes(ACC, LANES, <f64>(loadHalf(x) * loadHalf(y)));
    }
    store<f32>(out + (<usize>r << 2), hsum8(ACC));
  }
}

/** First byte past the kernels' static data: the host allocates from here up. */
export function heap_base(): usize {
  return __heap_base;
}
