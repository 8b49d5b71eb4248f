import { GgmlType } from "../gguf/ggml-types.js";
import { kQuantFormat, KBlock } from "./kquant.js";
import { makeQ3Quants } from "./kquant-search.js";
import { readHalf, writeHalf } from "./half.js";
import { QK_K } from "./q8_k.js";
import { clamp, f32, nearestInt } from "./rounding.js";

/** block_q3_K: hmask[32] (third bit) | qs[64] (low 2 bits) | scales[12] (16 six-bit scales) | d (f16). */
const SIZE = 110;

/** The 6-bit scale j (0..15) from the 12 packed bytes: low 4 bits in bytes 0..7, high 2 bits in 8..11. */
function scaleAt(bytes: Uint8Array, at: number, j: number): number {
  const low = j < 8 ? bytes[at + j] & 0xf : bytes[at + j - 8] >> 4;
  const high = (bytes[at + 8 + (j % 4)] >> (2 * Math.floor(j / 4))) & 3;
  return low | (high << 4);
}

function unpack(bytes: Uint8Array, at: number, out: KBlock): void {
  out.d = readHalf(bytes, at + 108);
  out.dmin = 0;
  for (let s = 0; s < 16; s++) {
    out.scale[s] = scaleAt(bytes, at + 96, s) - 32;
    out.min[s] = 0;
  }
  for (let e = 0; e < QK_K; e++) {
    const half = e >> 7;
    const j = (e & 127) >> 5;
    const l = e & 31;
    const low = (bytes[at + 32 + 32 * half + l] >> (2 * j)) & 3;
    const high = bytes[at + l] & (1 << (4 * half + j));
    out.q[e] = low - (high ? 0 : 4);
  }
}

function quantizeBlock(x: Float32Array, xo: number, bytes: Uint8Array, at: number): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    scales[j] = makeQ3Quants(16, 4, x, xo + 16 * j, L, 16 * j);
    const s = Math.abs(scales[j]);
    if (s > amax) [amax, maxScale] = [s, scales[j]];
  }
  bytes.fill(0, at, at + SIZE);
  if (maxScale) {
    const iscale = f32(-32 / maxScale);
    for (let j = 0; j < 16; j++) {
      // ggml stores nearest_int into an int8_t before clamping.
      let l = (nearestInt(f32(iscale * scales[j])) << 24) >> 24;
      l = clamp(l, -32, 31) + 32;
      if (j < 8) bytes[at + 96 + j] = l & 0xf;
      else bytes[at + 96 + j - 8] |= (l & 0xf) << 4;
      bytes[at + 96 + 8 + (j % 4)] |= (l >> 4) << (2 * Math.floor(j / 4));
    }
    writeHalf(bytes, at + 108, f32(1 / iscale));
  } else {
    writeHalf(bytes, at + 108, 0);
  }
  const dAll = readHalf(bytes, at + 108);
  for (let j = 0; j < 16; j++) {
    const d = f32(dAll * (scaleAt(bytes, at + 96, j) - 32));
    if (!d) continue;
    for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = clamp(nearestInt(f32(x[xo + 16 * j + ii] / d)), -4, 3) + 4;
  }
  let m = 0;
  let hm = 1;
  for (let j = 0; j < QK_K; j++) {
    if (L[j] > 3) {
      bytes[at + m] |= hm;
      L[j] -= 4;
    }
    if (++m === QK_K / 8) {
      m = 0;
      hm <<= 1;
    }
  }
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      bytes[at + 32 + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
    }
  }
}

export const Q3_K = kQuantFormat({ type: GgmlType.Q3_K, name: "Q3_K", typeSize: SIZE, subSize: 16, mins: "none", unpack, quantizeBlock });
