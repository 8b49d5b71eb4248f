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

/**
 * acc[l] = fma(d, lane[l], acc[l]) for the eight lanes, with one rounding, as ggml's _mm256_fmadd_ps.
 * With relaxed SIMD this is the hardware FMA (fused on x86-64 and ARM64). Without it the sum is taken in
 * f64, which rounds twice: identical except in rare ties.
 */
@inline function fuseLanes(acc: usize, lanes: usize, d: f32): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const dd = f32x4.splat(d);
    v128.store(acc, f32x4.relaxed_madd(f32x4.convert_i32x4_s(v128.load(lanes)), dd, v128.load(acc)));
    v128.store(acc, f32x4.relaxed_madd(f32x4.convert_i32x4_s(v128.load(lanes, 16)), dd, v128.load(acc, 16)), 16);
  } else {
    const dd = f64x2.splat(<f64>d);
    for (let k: usize = 0; k < 32; k += 8) {
      const li = v128.load64_zero(lanes + k);
      const products = f64x2.mul(f64x2.convert_low_i32x4_s(li), dd);
      const accumulated = f64x2.promote_low_f32x4(v128.load64_zero(acc + k));
      v128.store64_lane(acc + k, f32x4.demote_f64x2_zero(f64x2.add(products, accumulated)), 0);
    }
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

// Each thread passes its own 112-byte scratch area (16-byte aligned): lane sums at +0, f32 accumulators
// at +32, a super-block's integer lane sums at +64, and the k-quant min accumulators at +96.

const Q8_0_SIZE: usize = 34;
const Q4_0_SIZE: usize = 18;

/** out[r] = row r of Q8_0 weights · Q8_0 activations, for `rows` rows of `n` elements. */
export function matvec_q8_0(weights: usize, rows: i32, activations: usize, n: i32, out: usize, scratch: usize): void {
  const LANES = scratch;
  const ACC = scratch + 32;
  const blocks = <usize>(n / 32);
  const rowBytes = blocks * Q8_0_SIZE;
  for (let r = 0; r < rows; r++) {
    const w = weights + <usize>r * rowBytes;
    memory.fill(ACC, 0, 32);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q8_0_SIZE;
      const y = activations + b * Q8_0_SIZE;
      laneSums(v128.load(x, 2), v128.load(x, 18), v128.load(y, 2), v128.load(y, 18), LANES);
      fuseLanes(ACC, LANES, loadHalf(x) * loadHalf(y));
    }
    store<f32>(out + (<usize>r << 2), hsum8(ACC));
  }
}

/** out[r] = row r of Q4_0 weights · Q8_0 activations. */
export function matvec_q4_0(weights: usize, rows: i32, activations: usize, n: i32, out: usize, scratch: usize): void {
  const LANES = scratch;
  const ACC = scratch + 32;
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
      fuseLanes(ACC, LANES, loadHalf(x) * loadHalf(y));
    }
    store<f32>(out + (<usize>r << 2), hsum8(ACC));
  }
}

// ---- k-quants: 256-element super-blocks against Q8_K activations (d f32 | qs[256] | bsums[16] i16) ----

const Q8_K_SIZE: usize = 292;
const Q4_K_SIZE: usize = 144;
const Q6_K_SIZE: usize = 210;

/** Adds scale_lo·lanes[0..3] and scale_hi·lanes[4..7] into the super-block's integer lane sums. */
@inline function addScaledLanes(scratch: usize, scaleLow: i32, scaleHigh: i32): void {
  const sumi = scratch + 64;
  v128.store(sumi, i32x4.add(v128.load(sumi), i32x4.mul(v128.load(scratch), i32x4.splat(scaleLow))));
  v128.store(sumi, i32x4.add(v128.load(sumi, 16), i32x4.mul(v128.load(scratch, 16), i32x4.splat(scaleHigh))), 16);
}

/** Sum of the 32 activations of sub-block s (two 16-element bsums). */
@inline function subBlockSum(y: usize, s: usize): i32 {
  return <i32>load<i16>(y + 260 + s * 4) + <i32>load<i16>(y + 262 + s * 4);
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at `p`. */
@inline function scaleK4(p: usize, j: usize): i32 {
  return j < 4 ? <i32>(load<u8>(p + j) & 63) : <i32>((load<u8>(p + j + 4) & 0xf) | ((load<u8>(p + j - 4) >> 6) << 4));
}
@inline function minK4(p: usize, j: usize): i32 {
  return j < 4 ? <i32>(load<u8>(p + j + 4) & 63) : <i32>((load<u8>(p + j + 4) >> 4) | ((load<u8>(p + j) >> 6) << 4));
}

/** The scalar fused multiply-add, as fuseLanes does it for one lane. */
@inline function fma32(a: f32, b: f32, c: f32): f32 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.extract_lane(f32x4.relaxed_madd(f32x4.splat(a), f32x4.splat(b), f32x4.splat(c)), 0);
  }
  return <f32>(<f64>a * <f64>b + <f64>c);
}

/** out[r] = row r of Q4_K weights · Q8_K activations. */
export function matvec_q4_k(weights: usize, rows: i32, activations: usize, n: i32, out: usize, scratch: usize): void {
  const LANES = scratch;
  const ACC = scratch + 32;
  const SUMI = scratch + 64;
  const MIN_ACC = scratch + 96;
  const blocks = <usize>(n / 256);
  const rowBytes = blocks * Q4_K_SIZE;
  const mask = i8x16.splat(0x0f);
  for (let r = 0; r < rows; r++) {
    const w = weights + <usize>r * rowBytes;
    memory.fill(ACC, 0, 32);
    memory.fill(MIN_ACC, 0, 16);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q4_K_SIZE;
      const y = activations + b * Q8_K_SIZE;
      const yd = load<f32>(y);
      const d = yd * loadHalf(x);
      const dminNeg = -yd * loadHalf(x + 2);
      memory.fill(SUMI, 0, 32);
      for (let c: usize = 0; c < 4; c++) {
        const q0 = v128.load(x + 16 + 32 * c);
        const q1 = v128.load(x + 16 + 32 * c + 16);
        const y0 = y + 4 + 64 * c;
        laneSums(v128.and(q0, mask), v128.and(q1, mask), v128.load(y0), v128.load(y0, 16), LANES);
        const s0 = scaleK4(x + 4, 2 * c);
        addScaledLanes(scratch, s0, s0);
        laneSums(i8x16.shr_u(q0, 4), i8x16.shr_u(q1, 4), v128.load(y0, 32), v128.load(y0, 48), LANES);
        const s1 = scaleK4(x + 4, 2 * c + 1);
        addScaledLanes(scratch, s1, s1);
      }
      for (let l: usize = 0; l < 4; l++) {
        const term = minK4(x + 4, 2 * l) * subBlockSum(y, 2 * l) + minK4(x + 4, 2 * l + 1) * subBlockSum(y, 2 * l + 1);
        store<f32>(MIN_ACC + l * 4, fma32(dminNeg, <f32>term, load<f32>(MIN_ACC + l * 4)));
      }
      fuseLanes(ACC, SUMI, d);
    }
    const mins = (load<f32>(MIN_ACC) + load<f32>(MIN_ACC, 8)) + (load<f32>(MIN_ACC, 4) + load<f32>(MIN_ACC, 12));
    store<f32>(out + (<usize>r << 2), hsum8(ACC) + mins);
  }
}

/** out[r] = row r of Q6_K weights · Q8_K activations. */
export function matvec_q6_k(weights: usize, rows: i32, activations: usize, n: i32, out: usize, scratch: usize): void {
  const LANES = scratch;
  const ACC = scratch + 32;
  const SUMI = scratch + 64;
  const blocks = <usize>(n / 256);
  const rowBytes = blocks * Q6_K_SIZE;
  const low4 = i8x16.splat(0x0f);
  const two = i8x16.splat(3);
  const bias = i8x16.splat(32);
  for (let r = 0; r < rows; r++) {
    const w = weights + <usize>r * rowBytes;
    memory.fill(ACC, 0, 32);
    for (let b: usize = 0; b < blocks; b++) {
      const x = w + b * Q6_K_SIZE;
      const y = activations + b * Q8_K_SIZE;
      const d = load<f32>(y) * loadHalf(x + 208);
      memory.fill(SUMI, 0, 32);
      for (let g: usize = 0; g < 8; g++) {
        const half = g >> 2;
        const quarter = g & 3;
        const ql = x + 64 * half + (quarter & 1 ? 32 : 0);
        const qh = x + 128 + 32 * half;
        let l0 = v128.load(ql);
        let l1 = v128.load(ql, 16);
        if (quarter >= 2) {
          l0 = i8x16.shr_u(l0, 4);
          l1 = i8x16.shr_u(l1, 4);
        }
        const shift = 2 * <i32>quarter;
        const h0 = i8x16.shl(v128.and(i8x16.shr_u(v128.load(qh), shift), two), 4);
        const h1 = i8x16.shl(v128.and(i8x16.shr_u(v128.load(qh, 16), shift), two), 4);
        const v0 = i8x16.sub(v128.or(v128.and(l0, low4), h0), bias);
        const v1 = i8x16.sub(v128.or(v128.and(l1, low4), h1), bias);
        const yg = y + 4 + 32 * g;
        laneSums(v0, v1, v128.load(yg), v128.load(yg, 16), LANES);
        addScaledLanes(scratch, <i32>load<i8>(x + 192 + 2 * g), <i32>load<i8>(x + 192 + 2 * g + 1));
      }
      fuseLanes(ACC, SUMI, d);
    }
    store<f32>(out + (<usize>r << 2), hsum8(ACC));
  }
}

/** First byte past the kernels' static data: the host allocates from here up. */
export function heap_base(): usize {
  return __heap_base;
}
