import { signedAbsMax } from "./block-stats.js";
import { f32, nearestInt } from "./rounding.js";

/**
 * The scale searches behind ggml's reference k-quantizers (make_qx_quants, make_q3_quants,
 * make_qkx2_quants). Every step is rounded to f32 so that files come out as llama-quantize writes them.
 */
const GROUP_MAX_EPS = 1e-15;

const clampLevel = (l: number, lo: number, hi: number): number => (l < lo ? lo : l > hi ? hi : l);

/** Symmetric levels in [-nmax, nmax-1] stored as level+nmax in L; returns the scale. */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number, rmseType: number): number {
  const { amax, max } = signedAbsMax(x, xo, n);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = f32(-nmax / max);
  if (rmseType === 0) {
    for (let i = 0; i < n; i++) L[lo + i] = nmax + clampLevel(nearestInt(f32(iscale * x[xo + i])), -nmax, nmax - 1);
    return f32(1 / iscale);
  }
  const weight = (v: number): number =>
    rmseType === 1 ? f32(v * v) : rmseType === 2 ? 1 : rmseType === 3 ? Math.abs(v) : f32(Math.sqrt(Math.abs(v)));
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clampLevel(nearestInt(f32(iscale * v)), -nmax, nmax - 1);
    L[lo + i] = l + nmax;
    const w = weight(v);
    sumlx = f32(sumlx + f32(f32(w * v) * l));
    suml2 = f32(suml2 + f32(f32(w * l) * l));
  }
  let scale = suml2 ? f32(sumlx / suml2) : 0;
  let best = f32(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f32(-f32(nmax + f32(0.1 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = clampLevel(nearestInt(f32(iscale * v)), -nmax, nmax - 1);
      const w = weight(v);
      sumlx = f32(sumlx + f32(f32(w * v) * l));
      suml2 = f32(suml2 + f32(f32(w * l) * l));
    }
    if (suml2 > 0 && f32(sumlx * sumlx) > f32(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = nmax + clampLevel(nearestInt(f32(iscale * x[xo + i])), -nmax, nmax - 1);
      scale = f32(sumlx / suml2);
      best = f32(scale * sumlx);
    }
  }
  return scale;
}

/** Q3_K's search: iteratively moves single levels while the weighted fit improves. */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  const { amax, max } = signedAbsMax(x, xo, n);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = f32(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clampLevel(nearestInt(f32(iscale * v)), -nmax, nmax - 1);
    L[lo + i] = l;
    const w = f32(v * v);
    sumlx = f32(sumlx + f32(f32(w * v) * l));
    suml2 = f32(suml2 + f32(f32(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const w = f32(v * v);
      let slx = f32(sumlx - f32(f32(w * v) * L[lo + i]));
      if (slx > 0) {
        let sl2 = f32(suml2 - f32(f32(w * L[lo + i]) * L[lo + i]));
        const newL = clampLevel(nearestInt(f32(f32(v * sl2) / slx)), -nmax, nmax - 1);
        if (newL !== L[lo + i]) {
          slx = f32(slx + f32(f32(w * v) * newL));
          sl2 = f32(sl2 + f32(f32(w * newL) * newL));
          if (sl2 > 0 && f32(f32(slx * slx) * suml2) > f32(f32(sumlx * sumlx) * sl2)) {
            L[lo + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] += nmax;
  return suml2 > 0 ? f32(sumlx / suml2) : 0;
}

/** Asymmetric levels in [0, nmax] with a min, fitted by weighted least squares over a range of scales. */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): { scale: number; min: number } {
  const Laux = new Uint8Array(n);
  let min = x[xo];
  let max = x[xo];
  let sumW = weights[0];
  let sumX = f32(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i];
    sumW = f32(sumW + w);
    sumX = f32(sumX + f32(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return { scale: 0, min: -min };
  }
  let iscale = f32(nmax / f32(max - min));
  let scale = f32(1 / iscale);
  const error = (diff: number): number => (useMad ? Math.abs(diff) : f32(diff * diff));
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = clampLevel(nearestInt(f32(iscale * f32(x[xo + i] - min))), 0, nmax);
    L[lo + i] = l;
    const diff = f32(f32(f32(scale * l) + min) - x[xo + i]);
    bestError = f32(bestError + f32(weights[i] * error(diff)));
  }
  if (nstep < 1) return { scale, min: -min };
  for (let is = 0; is <= nstep; is++) {
    iscale = f32(f32(f32(rmin + f32(rdelta * is)) + nmax) / f32(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = clampLevel(nearestInt(f32(iscale * f32(v - min))), 0, nmax);
      Laux[i] = l;
      const w = weights[i];
      sumL = f32(sumL + f32(w * l));
      sumL2 = f32(sumL2 + f32(f32(w * l) * l));
      sumXL = f32(sumXL + f32(f32(w * l) * v));
    }
    const D = f32(f32(sumW * sumL2) - f32(sumL * sumL));
    if (D > 0) {
      let thisScale = f32(f32(f32(sumW * sumXL) - f32(sumX * sumL)) / D);
      let thisMin = f32(f32(f32(sumL2 * sumX) - f32(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f32(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f32(f32(f32(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        curError = f32(curError + f32(weights[i] * error(diff)));
      }
      if (curError < bestError) {
        L.set(Laux, lo);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return { scale, min: -min };
}
