/** The scans every quantizer starts with. */

/** The element of largest magnitude, with its sign; the first one wins a tie (ggml's `amax < fabsf(v)` scan). */
export function signedAbsMax(x: Float32Array, from: number, n: number): { amax: number; max: number } {
  let amax = 0;
  let max = 0;
  for (let i = from; i < from + n; i++) {
    const a = Math.abs(x[i]);
    if (a > amax) {
      amax = a;
      max = x[i];
    }
  }
  return { amax, max };
}

export function minMax(x: Float32Array, from: number, n: number): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = from; i < from + n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
  }
  return { min, max };
}
