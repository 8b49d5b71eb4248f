import { GgmlType } from "../gguf/ggml-types.js";
import { kQuantFormat, KBlock, packScaleMinK4, scaleMinK4 } from "./kquant.js";
import { makeQkx2Quants } from "./kquant-search.js";
import { readHalf, writeHalf } from "./half.js";
import { QK_K } from "./q8_k.js";
import { clamp, f32, nearestInt } from "./rounding.js";

/** block_q4_K: d (f16) | dmin (f16) | scales[12] (8 six-bit scales and mins) | qs[128] (4 bits). */
const SIZE = 144;

export function unpackScaleMin(bytes: Uint8Array, at: number, out: KBlock): void {
  out.d = readHalf(bytes, at);
  out.dmin = readHalf(bytes, at + 2);
  for (let s = 0; s < 8; s++) [out.scale[s], out.min[s]] = scaleMinK4(bytes, at + 4, s);
}

/**
 * The part Q4_K and Q5_K share: fit each 32-element sub-block, quantize the scales and mins to 6 bits
 * under d/dmin, and return the levels re-derived from the stored (rounded) scales.
 */
export function quantizeScaleMin(x: Float32Array, xo: number, nmax: number, rmin: number, nstep: number, bytes: Uint8Array, at: number): Uint8Array {
  const L = new Uint8Array(QK_K);
  const weights = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f32(sumX2 + f32(x[xo + 32 * j + l] * x[xo + 32 * j + l]));
    const avX = f32(Math.sqrt(f32(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f32(avX + Math.abs(x[xo + 32 * j + l]));
    const fit = makeQkx2Quants(32, nmax, x, xo + 32 * j, weights, L, 32 * j, rmin, 0.1, nstep, false);
    scales[j] = fit.scale;
    mins[j] = fit.min;
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? f32(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f32(63 / maxMin) : 0;
  const ls = new Uint8Array(8);
  const lm = new Uint8Array(8);
  for (let j = 0; j < 8; j++) {
    ls[j] = Math.min(63, nearestInt(f32(invScale * scales[j])) & 0xff);
    lm[j] = Math.min(63, nearestInt(f32(invMin * mins[j])) & 0xff);
  }
  packScaleMinK4(ls, lm, bytes, at + 4);
  writeHalf(bytes, at, f32(maxScale / 63));
  writeHalf(bytes, at + 2, f32(maxMin / 63));
  const d = readHalf(bytes, at);
  const dmin = readHalf(bytes, at + 2);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(bytes, at + 4, j);
    const dl = f32(d * sc);
    if (!dl) continue;
    const dm = f32(dmin * m);
    for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = clamp(nearestInt(f32(f32(x[xo + 32 * j + ii] + dm) / dl)), 0, nmax);
  }
  return L;
}

function unpack(bytes: Uint8Array, at: number, out: KBlock): void {
  unpackScaleMin(bytes, at, out);
  for (let e = 0; e < QK_K; e++) {
    const chunk = e >> 6;
    const r = e & 63;
    const byte = bytes[at + 16 + 32 * chunk + (r & 31)];
    out.q[e] = r < 32 ? byte & 0xf : byte >> 4;
  }
}

function quantizeBlock(x: Float32Array, xo: number, bytes: Uint8Array, at: number): void {
  const L = quantizeScaleMin(x, xo, 15, -1, 20, bytes, at);
  for (let j = 0; j < QK_K; j += 64) {
    for (let l = 0; l < 32; l++) bytes[at + 16 + j / 2 + l] = L[j + l] | (L[j + l + 32] << 4);
  }
}

export const Q4_K = kQuantFormat({ type: GgmlType.Q4_K, name: "Q4_K", typeSize: SIZE, subSize: 32, mins: "lanes4", unpack, quantizeBlock });
