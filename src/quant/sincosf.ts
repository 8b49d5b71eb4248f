/**
 * sinf and cosf as glibc (2.28 and later) computes them, bit for bit. ggml's RoPE calls the C library's
 * single-precision sin and cos, and glibc's are not correctly rounded: Math.sin rounded to f32 differs
 * from them in about 2% of a RoPE table's entries (the first at position 11 for a head size of 32),
 * enough to move a quantized model's log-probabilities by 0.1. The method: the argument widened to f64,
 * reduced by multiples of π/2 (one multiply-subtract below 120, a 4/π table of 192 bits above), then
 * short polynomials in f64, rounded to f32 at the end.
 */

const f32 = Math.fround;
const scratch = new DataView(new ArrayBuffer(4));

function floatBits(x: number): number {
  scratch.setFloat32(0, x);
  return scratch.getUint32(0);
}

/** Exponent and top mantissa bits without the sign: glibc's coarse magnitude classes. */
function magnitudeClass(x: number): number {
  return (floatBits(x) >>> 20) & 0x7ff;
}

interface Polynomials {
  c0: number;
  c1: number;
  c2: number;
  c3: number;
  c4: number;
  s1: number;
  s2: number;
  s3: number;
}

const COSINE_SIGN = [1, -1, -1, 1];
/** 2/π scaled by 2^24, so that the quadrant lands in bits 24 and up of an i32. */
const HALF_PI_INVERSE = 0x145f306dc9c883 * 2 ** -29;
const HALF_PI = 0x1921fb54442d18 * 2 ** -52;
/** 2π · 2^-64: the unit of the large reduction's fixed-point result. */
const PI_63 = 0x1921fb54442d18 * 2 ** -114;
const POSITIVE: Polynomials = {
  c0: 1,
  c1: -0x1ffffffd0c621c * 2 ** -54,
  c2: 0x155553e1068f19 * 2 ** -57,
  c3: -0x16c087e89a359d * 2 ** -62,
  c4: 0x199343027bf8c3 * 2 ** -68,
  s1: -0x1555545995a603 * 2 ** -55,
  s2: 0x11107605230bc4 * 2 ** -59,
  s3: -0x1994eb3774cf24 * 2 ** -65,
};
/** The same with the cosine polynomial negated (quadrants 2 and 3). */
const NEGATED: Polynomials = { ...POSITIVE, c0: -1, c1: -POSITIVE.c1, c2: -POSITIVE.c2, c3: -POSITIVE.c3, c4: -POSITIVE.c4 };

/** 4/π to 192 bits, eight new bits an entry. */
const FOUR_OVER_PI = [
  0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529, 0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1,
  0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0, 0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
].map(BigInt);

const BELOW_QUARTER_PI = magnitudeClass(f32(Math.PI / 4));
const TINY = magnitudeClass(2 ** -12);
const FAST_REDUCTION_LIMIT = magnitudeClass(120);
const INFINITE = magnitudeClass(Infinity);
const U64 = (1n << 64n) - 1n;

/** sin (even n) or cos (odd n) of the reduced x, with x2 = x·x. */
function polynomial(x: number, x2: number, p: Polynomials, n: number): number {
  if ((n & 1) === 0) {
    const x3 = x * x2;
    const s1 = p.s2 + x2 * p.s3;
    const x7 = x3 * x2;
    const s = x + x3 * p.s1;
    return f32(s + x7 * s1);
  }
  const x4 = x2 * x2;
  const c2 = p.c3 + x2 * p.c4;
  const c1 = p.c0 + x2 * p.c1;
  const x6 = x4 * x2;
  const c = c1 + x4 * p.c2;
  return f32(c + x6 * c2);
}

/** x mod π/2 in [−π/4, π/4] and the quadrant, for |x| below 120. */
function reduceFast(x: number): [number, number] {
  const n = (((x * HALF_PI_INVERSE) | 0) + 0x800000) >> 24;
  return [x - n * HALF_PI, n];
}

/** The same for large |x| from its float bits: an exact 32 × 96-bit product with 4/π in fixed point. */
function reduceLarge(bits: number): [number, number] {
  const table = (bits >>> 26) & 15;
  const mantissa = BigInt((((bits & 0xffffff) | 0x800000) << ((bits >>> 23) & 7)) >>> 0);
  let fraction = (mantissa * FOUR_OVER_PI[table]) & 0xffffffffn;
  fraction = (((mantissa * FOUR_OVER_PI[table + 8]) >> 32n) | (fraction << 32n)) & U64;
  fraction = (fraction + mantissa * FOUR_OVER_PI[table + 4]) & U64;
  const n = ((fraction + (1n << 61n)) & U64) >> 62n;
  fraction = (fraction - (n << 62n)) & U64;
  const signed = fraction >= 1n << 63n ? fraction - (1n << 64n) : fraction;
  return [Number(signed) * PI_63, Number(n)];
}

/** cos when `cosine`, else sin, of the f32 value y. */
function sinOrCos(y: number, cosine: boolean): number {
  const bits = floatBits(y);
  const magnitude = (bits >>> 20) & 0x7ff;
  const odd = cosine ? 1 : 0;
  if (magnitude < BELOW_QUARTER_PI) {
    if (magnitude < TINY) return cosine ? 1 : y;
    return polynomial(y, y * y, POSITIVE, odd);
  }
  if (magnitude >= INFINITE) return NaN;
  const [x, n] = magnitude < FAST_REDUCTION_LIMIT ? reduceFast(y) : reduceLarge(bits);
  const quadrant = magnitude < FAST_REDUCTION_LIMIT ? n : n + (bits >>> 31);
  const signed = x * COSINE_SIGN[quadrant & 3];
  return polynomial(signed, x * x, quadrant & 2 ? NEGATED : POSITIVE, n ^ odd);
}

export function glibcSinf(y: number): number {
  return sinOrCos(f32(y), false);
}

export function glibcCosf(y: number): number {
  return sinOrCos(f32(y), true);
}
