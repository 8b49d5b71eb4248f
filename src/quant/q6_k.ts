import { GgmlType } from "../gguf/ggml-types.js";
import { kQuantFormat, KBlock } from "./kquant.js";
import { makeQxQuants } from "./kquant-search.js";
import { readHalf, writeHalf } from "./half.js";
import { QK_K } from "./q8_k.js";
import { clamp, f32, nearestInt } from "./rounding.js";
import { int8 } from "./views.js";

/** block_q6_K: ql[128] (low 4 bits) | qh[64] (high 2 bits) | scales[16] (int8) | d (f16). */
const SIZE = 210;

function unpack(bytes: Uint8Array, at: number, out: KBlock): void {
  out.d = readHalf(bytes, at + 208);
  out.dmin = 0;
  for (let s = 0; s < 16; s++) {
    out.scale[s] = int8(bytes[at + 192 + s]);
    out.min[s] = 0;
  }
  for (let e = 0; e < QK_K; e++) {
    const half = e >> 7;
    const quarter = (e & 127) >> 5;
    const l = e & 31;
    const ql = bytes[at + 64 * half + l + (quarter & 1 ? 32 : 0)];
    const low = quarter < 2 ? ql & 0xf : ql >> 4;
    const high = (bytes[at + 128 + 32 * half + l] >> (2 * quarter)) & 3;
    out.q[e] = (low | (high << 4)) - 32;
  }
}

function quantizeBlock(x: Float32Array, xo: number, bytes: Uint8Array, at: number): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    scales[ib] = makeQxQuants(16, 32, x, xo + 16 * ib, L, 16 * ib, 1);
    const abs = Math.abs(scales[ib]);
    if (abs > maxAbsScale) [maxAbsScale, maxScale] = [abs, scales[ib]];
  }
  bytes.fill(0, at, at + SIZE);
  if (maxAbsScale < 1e-15) return;
  const iscale = f32(-128 / maxScale);
  writeHalf(bytes, at + 208, f32(1 / iscale));
  for (let ib = 0; ib < 16; ib++) bytes[at + 192 + ib] = Math.min(127, nearestInt(f32(iscale * scales[ib]))) & 0xff;
  const d = readHalf(bytes, at + 208);
  for (let j = 0; j < 16; j++) {
    const dl = f32(d * int8(bytes[at + 192 + j]));
    if (!dl) continue;
    for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = clamp(nearestInt(f32(x[xo + 16 * j + ii] / dl)), -32, 31) + 32;
  }
  for (let j = 0; j < QK_K; j += 128) {
    const ql = at + j / 2;
    const qh = at + 128 + j / 4;
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l] & 0xf;
      const q2 = L[j + l + 32] & 0xf;
      const q3 = L[j + l + 64] & 0xf;
      const q4 = L[j + l + 96] & 0xf;
      bytes[ql + l] = q1 | (q3 << 4);
      bytes[ql + l + 32] = q2 | (q4 << 4);
      bytes[qh + l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
    }
  }
}

export const Q6_K = kQuantFormat({ type: GgmlType.Q6_K, name: "Q6_K", typeSize: SIZE, subSize: 16, mins: "none", unpack, quantizeBlock });
