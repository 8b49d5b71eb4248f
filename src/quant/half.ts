/** IEEE half and bfloat16 conversions, rounding to nearest even as ggml's F16C and scalar paths do. */
const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function buildHalfTable(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 31) table[h] = mant ? NaN : sign * Infinity;
    else table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return table;
}

/** f16 bits → f32 value. */
export const HALF_TO_FLOAT = buildHalfTable();

export function halfToFloat(bits: number): number {
  return HALF_TO_FLOAT[bits & 0xffff];
}

export function floatToHalf(value: number): number {
  scratch[0] = value;
  const w = scratchBits[0];
  const sign = (w >>> 16) & 0x8000;
  const exp = (w >>> 23) & 0xff;
  const mant = w & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    const shift = 14 - e;
    if (shift > 24) return sign;
    const full = mant | 0x800000;
    let half = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

export function bf16ToFloat(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratch[0];
}

export function floatToBf16(value: number): number {
  scratch[0] = value;
  const u = scratchBits[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) & 0xffff;
}

export function readHalf(bytes: Uint8Array, at: number): number {
  return HALF_TO_FLOAT[bytes[at] | (bytes[at + 1] << 8)];
}

export function writeHalf(bytes: Uint8Array, at: number, value: number): void {
  const h = floatToHalf(value);
  bytes[at] = h & 0xff;
  bytes[at + 1] = h >>> 8;
}
