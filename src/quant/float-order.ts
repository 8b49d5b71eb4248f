/**
 * ggml's x86 kernels accumulate in eight f32 lanes with fused multiply-adds and reduce the lanes in a
 * fixed order. Reproducing that order (not just the math) is what makes our logits bit-identical to
 * llama.cpp's, so that quantized activations round the same way downstream.
 */
import { floatToHalf, HALF_TO_FLOAT } from "./half.js";

const f32 = Math.fround;

const wide = new Float64Array(1);
const wideBits = new Uint32Array(wide.buffer);

/**
 * _mm256_fmadd_ps on one lane: f32(a·b + c) with a single rounding. a·b is exact in f64; the sum is
 * rounded to odd in f64 (TwoSum gives its error) so that the final rounding to f32 is the correct one.
 */
export function fma32(a: number, b: number, c: number): number {
  const product = a * b;
  const sum = product + c;
  if (!Number.isFinite(sum)) return f32(sum);
  wide[0] = sum;
  // Rounding twice can only go wrong when the f64 sum sits exactly halfway between two f32 values.
  if ((wideBits[0] & 0x1fffffff) !== 0x10000000 && Math.abs(sum) >= 2 ** -126) return f32(sum);
  const bVirtual = sum - product;
  const error = product - (sum - bVirtual) + (c - bVirtual);
  if (error === 0) return f32(sum);
  if (sum === 0) return f32(error);
  wide[0] = sum;
  if ((wideBits[0] & 1) === 0) {
    // Step one f64 ulp toward the exact value, which makes the last bit odd (round to odd).
    if (error > 0 === sum > 0) {
      wideBits[0] = (wideBits[0] + 1) >>> 0;
      if (wideBits[0] === 0) wideBits[1] += 1;
    } else {
      if (wideBits[0] === 0) wideBits[1] -= 1;
      wideBits[0] = (wideBits[0] - 1) >>> 0;
    }
  }
  return f32(wide[0]);
}

/** hsum_float_8: (lo4 + hi4), then lanes 0+2 / 1+3, then 0+1. */
export function hsumFloat8(acc: Float32Array): number {
  const r0 = f32(acc[0] + acc[4]);
  const r1 = f32(acc[1] + acc[5]);
  const r2 = f32(acc[2] + acc[6]);
  const r3 = f32(acc[3] + acc[7]);
  return f32(f32(r0 + r2) + f32(r1 + r3));
}

const sums = new Float32Array(32);

/**
 * ggml_vec_dot_f32 / _f16 on AVX2: four 8-lane FMA accumulators over chunks of 32, reduced pairwise,
 * then an hadd reduction; the tail (n mod 32) is added in f64 one product at a time.
 */
export function dotF32Order(n: number, x: (i: number) => number, y: (i: number) => number): number {
  const np = n & ~31;
  sums.fill(0);
  for (let i = 0; i < np; i += 32) {
    for (let k = 0; k < 32; k++) sums[k] = fma32(x(i + k), y(i + k), sums[k]);
  }
  let total = 0;
  if (np > 0) total = reduceSums();
  for (let i = np; i < n; i++) total += f32(x(i) * y(i));
  return f32(total);
}

/** GGML_F32_VEC_REDUCE over the four 8-lane accumulators in `sums`: pairwise, then the hadd pattern. */
function reduceSums(): number {
  for (let l = 0; l < 8; l++) {
    sums[l] = f32(sums[l] + sums[16 + l]);
    sums[8 + l] = f32(sums[8 + l] + sums[24 + l]);
  }
  for (let l = 0; l < 8; l++) sums[l] = f32(sums[l] + sums[8 + l]);
  const h0 = f32(f32(sums[0] + sums[4]) + f32(sums[1] + sums[5]));
  const h1 = f32(f32(sums[2] + sums[6]) + f32(sums[3] + sums[7]));
  return f32(h0 + h1);
}

/**
 * ggml_v_expf (AVX2 + FMA): the vectorised exp that ggml's softmax and SiLU use instead of libm's expf.
 * Its results differ from a correctly rounded exp in the last bit or two.
 */
const scratch = new Float32Array(1);
const scratchBits = new Int32Array(scratch.buffer);
const asFloat = (bits: number): number => {
  scratchBits[0] = bits | 0;
  return scratch[0];
};
const asBits = (value: number): number => {
  scratch[0] = value;
  return scratchBits[0];
};

/** C99 hex-float literal 0x1.<fraction>p<exponent>, which JavaScript lacks. */
function hexFloat(fraction: string, exponent: number): number {
  return (1 + parseInt(fraction, 16) / 16 ** fraction.length) * 2 ** exponent;
}

const SHIFT = hexFloat("8", 23);
const LOG2E = f32(hexFloat("715476", 0));
const LN2_HI = f32(hexFloat("62e4", -1));
const LN2_LO = f32(hexFloat("7f7d1c", -20));
const P0 = f32(hexFloat("0e402", -7));
const P1 = f32(hexFloat("573e2e", -5));
const P2 = f32(hexFloat("555e66", -3));
const P3 = f32(hexFloat("fffdb6", -2));
const P4 = f32(hexFloat("ffffec", -1));
const ONE_BITS = 0x3f800000;

export function ggmlExpf(x: number): number {
  const z = fma32(x, LOG2E, SHIFT);
  const n = f32(z - SHIFT);
  const b = fma32(-n, LN2_LO, fma32(-n, LN2_HI, x));
  const e = asBits(z) << 23;
  const k = asFloat(e + ONE_BITS);
  const u = f32(b * b);
  const j = fma32(fma32(fma32(P0, b, P1), u, fma32(P2, b, P3)), u, f32(P4 * b));
  if (!(Math.abs(n) > 126)) return fma32(j, k, k);
  const g = n <= 0 ? 0x82000000 | 0 : 0;
  const s1 = asFloat(g + 0x7f000000);
  const s2 = asFloat(e - g);
  if (Math.abs(n) > 192) return f32(s1 * s1);
  return f32(fma32(s2, j, s2) * s1);
}

/** ggml_v_silu: x / (1 + expf(−x)) with the vectorised exp. */
export function ggmlSilu(x: number): number {
  return f32(x / f32(1 + ggmlExpf(f32(-x))));
}

/**
 * One 32-element block of an x86 quantized dot product: the integer products are summed in groups of
 * four (one 32-bit lane each, as maddubs + madd leave them) and fused into eight f32 accumulators.
 */
export function fmaBlockLanes(acc: Float32Array, d: number, products: Int32Array): void {
  for (let l = 0; l < 8; l++) {
    const p = 4 * l;
    acc[l] = fma32(d, products[p] + products[p + 1] + products[p + 2] + products[p + 3], acc[l]);
  }
}

/** ggml_vec_dot_bf16 on AVX2: four accumulators folded as (c1+c3)+(c2+c4), then hsum; the tail in f64. */
export function dotBf16Order(n: number, x: (i: number) => number, y: (i: number) => number): number {
  const np = n - (n % 32);
  sums.fill(0);
  for (let i = 0; i < np; i += 32) {
    for (let k = 0; k < 32; k++) sums[k] = fma32(x(i + k), y(i + k), sums[k]);
  }
  let total = 0;
  if (np > 0) {
    const folded = new Float32Array(8);
    for (let l = 0; l < 8; l++) folded[l] = f32(f32(sums[l] + sums[16 + l]) + f32(sums[8 + l] + sums[24 + l]));
    total = hsumFloat8(folded);
  }
  for (let i = np; i < n; i++) total += f32(x(i) * y(i));
  return f32(total);
}


/**
 * dotF32Order / dotTinyBlasOrder specialised for attention: f32 values a[aOff + i] against the cache's
 * values widened to f32, b[bOff + i·bStride], where only the first `count` of the n products can be
 * non-zero (the rest are masked cache cells). Skipping the zero chunks leaves every lane's sum unchanged.
 */
export function dotMasked(
  order: "vec_dot" | "tinyblas",
  n: number,
  count: number,
  a: Float32Array,
  aOff: number,
  b: Float32Array,
  bOff: number,
  bStride: number,
): number {
  if (order === "tinyblas") {
    const lanes = tinyLanes.fill(0);
    const end = Math.min(n, Math.ceil(count / 8) * 8);
    for (let i = 0; i < end; i++) {
      const x = i < count ? a[aOff + i] : 0;
      lanes[i & 7] = fma32(x, x === 0 ? 0 : b[bOff + i * bStride], lanes[i & 7]);
    }
    return hsumFloat8(lanes);
  }
  const np = n & ~31;
  const end = Math.min(np, Math.ceil(count / 32) * 32);
  sums.fill(0);
  for (let i = 0; i < end; i++) {
    const x = i < count ? a[aOff + i] : 0;
    sums[i & 31] = fma32(x, x === 0 ? 0 : b[bOff + i * bStride], sums[i & 31]);
  }
  let total = 0;
  if (np > 0) total = reduceSums();
  for (let i = np; i < Math.min(n, count); i++) total += f32(a[aOff + i] * b[bOff + i * bStride]);
  return f32(total);
}

const tinyLanes = new Float32Array(8);

/** The interleaved kernels' order: acc = fma(blockSum(b), scale(b), acc) for b = 0 … blocks − 1. */
export function blockwiseOrder(blocks: number, blockSum: (b: number) => number, scale: (b: number) => number): number {
  let acc = 0;
  for (let b = 0; b < blocks; b++) acc = fma32(blockSum(b), scale(b), acc);
  return acc;
}

/**
 * ggml_soft_max of one row in place: exp(x − max) in chunks of eight through ggml's vectorised expf,
 * each chunk summed in f32 and the chunks in f64, a tail through libm's expf; then times 1/sum.
 */
export function softmaxInPlace(x: Float32Array, offset: number, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[offset + i]);
  let sum = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    for (let l = 0; l < 8; l++) chunk[l] = ggmlExpf(f32(x[offset + i + l] - max));
    x.set(chunk, offset + i);
    sum += hsumFloat8(chunk);
  }
  for (; i < n; i++) {
    const value = f32(Math.exp(f32(x[offset + i] - max)));
    x[offset + i] = value;
    sum += value;
  }
  const inv = f32(1 / sum);
  for (let j = 0; j < n; j++) x[offset + j] = f32(x[offset + j] * inv);
}

const chunk = new Float32Array(8);

const SQRT_2_OVER_PI = f32(0.7978845608028654);
const GELU_COEF_A = f32(0.044715);

/** ggml_gelu_f32, the tanh approximation, step by step in f32 (its constants are float literals). */
function geluF32(x: number): number {
  const inner = f32(f32(SQRT_2_OVER_PI * x) * f32(1 + f32(f32(GELU_COEF_A * x) * x)));
  return f32(f32(0.5 * x) * f32(1 + f32(Math.tanh(inner))));
}

let geluTable: Float32Array | undefined;

/** ggml's table of GELU values (ggml_table_gelu_f16): for every F16 x, gelu(x) rounded to F16, as f32. */
export function ggmlGeluTable(): Float32Array {
  if (!geluTable) {
    geluTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) geluTable[h] = HALF_TO_FLOAT[floatToHalf(geluF32(HALF_TO_FLOAT[h]))];
  }
  return geluTable;
}

/**
 * ggml's GELU on the CPU (GGML_GELU_FP16): x rounded to F16 indexes a table of GELU values rounded to
 * F16; beyond ±10 it is 0 or x.
 */
export function ggmlGelu(x: number): number {
  if (x <= -10) return 0;
  if (x >= 10) return x;
  return ggmlGeluTable()[floatToHalf(x)];
}

/** Gemma's soft-capping, as ggml composes it: scale by 1/cap, tanh, scale by cap (all f32). */
export function softcap(x: number, cap: number): number {
  return f32(f32(Math.tanh(f32(x * f32(1 / cap)))) * cap);
}
