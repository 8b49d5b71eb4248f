/** The rounding helpers ggml's quantizers use, reproduced in f32 arithmetic. */
export const f32 = Math.fround;

/** ggml's nearest_int: round half to even (the 1.5·2^23 trick). */
export function nearestInt(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/** C's roundf: half away from zero. */
export function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** C's (int8_t) cast of a float: truncation toward zero, then wrap to 8 bits. */
export function truncInt8(x: number): number {
  return (Math.trunc(x) << 24) >> 24;
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
