import { GgmlType } from "../gguf/ggml-types.js";
import { kQuantFormat, KBlock } from "./kquant.js";
import { makeQkx2Quants } from "./kquant-search.js";
import { readHalf, writeHalf } from "./half.js";
import { QK_K } from "./q8_k.js";
import { clamp, f32, nearestInt } from "./rounding.js";

/** block_q2_K: scales[16] (low nibble scale, high nibble min) | qs[64] (2 bits) | d (f16) | dmin (f16). */
const SIZE = 84;

function unpack(bytes: Uint8Array, at: number, out: KBlock): void {
  out.d = readHalf(bytes, at + 80);
  out.dmin = readHalf(bytes, at + 82);
  for (let s = 0; s < 16; s++) {
    out.scale[s] = bytes[at + s] & 0xf;
    out.min[s] = bytes[at + s] >> 4;
  }
  for (let e = 0; e < QK_K; e++) {
    const half = e >> 7;
    const j = (e & 127) >> 5;
    out.q[e] = (bytes[at + 16 + 32 * half + (e & 31)] >> (2 * j)) & 3;
  }
}

function quantizeBlock(x: Float32Array, xo: number, bytes: Uint8Array, at: number): void {
  const L = new Uint8Array(QK_K);
  const weights = new Float32Array(16);
  const scales = new Float32Array(16);
  const mins = new Float32Array(16);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 16; j++) {
    for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[xo + 16 * j + l]);
    const fit = makeQkx2Quants(16, 3, x, xo + 16 * j, weights, L, 16 * j, -0.5, 0.1, 15, true);
    scales[j] = fit.scale;
    mins[j] = fit.min;
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const q4scale = 15;
  if (maxScale > 0) {
    const iscale = f32(q4scale / maxScale);
    for (let j = 0; j < 16; j++) bytes[at + j] = nearestInt(f32(iscale * scales[j])) & 0xff;
    writeHalf(bytes, at + 80, f32(maxScale / q4scale));
  } else {
    bytes.fill(0, at, at + 16);
    writeHalf(bytes, at + 80, 0);
  }
  if (maxMin > 0) {
    const iscale = f32(q4scale / maxMin);
    for (let j = 0; j < 16; j++) bytes[at + j] |= (nearestInt(f32(iscale * mins[j])) << 4) & 0xff;
    writeHalf(bytes, at + 82, f32(maxMin / q4scale));
  } else {
    writeHalf(bytes, at + 82, 0);
  }
  const d = readHalf(bytes, at + 80);
  const dmin = readHalf(bytes, at + 82);
  for (let j = 0; j < 16; j++) {
    const dl = f32(d * (bytes[at + j] & 0xf));
    if (!dl) continue;
    const dm = f32(dmin * (bytes[at + j] >> 4));
    for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = clamp(nearestInt(f32(f32(x[xo + 16 * j + ii] + dm) / dl)), 0, 3);
  }
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      bytes[at + 16 + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
    }
  }
}

export const Q2_K = kQuantFormat({ type: GgmlType.Q2_K, name: "Q2_K", typeSize: SIZE, subSize: 16, mins: "lanes8", unpack, quantizeBlock });
