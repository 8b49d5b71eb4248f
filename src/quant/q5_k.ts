import { GgmlType } from "../gguf/ggml-types.js";
import { kQuantFormat, KBlock } from "./kquant.js";
import { quantizeScaleMin, unpackScaleMin } from "./q4_k.js";
import { QK_K } from "./q8_k.js";

/** block_q5_K: d (f16) | dmin (f16) | scales[12] | qh[32] (fifth bits) | qs[128] (low 4 bits). */
const SIZE = 176;

function unpack(bytes: Uint8Array, at: number, out: KBlock): void {
  unpackScaleMin(bytes, at, out);
  for (let e = 0; e < QK_K; e++) {
    const chunk = e >> 6;
    const r = e & 63;
    const l = r & 31;
    const byte = bytes[at + 48 + 32 * chunk + l];
    const highMask = (r < 32 ? 1 : 2) << (2 * chunk);
    out.q[e] = (r < 32 ? byte & 0xf : byte >> 4) + (bytes[at + 16 + l] & highMask ? 16 : 0);
  }
}

function quantizeBlock(x: Float32Array, xo: number, bytes: Uint8Array, at: number): void {
  const L = quantizeScaleMin(x, xo, 31, -0.5, 15, bytes, at);
  bytes.fill(0, at + 16, at + 48);
  let m1 = 1;
  let m2 = 2;
  for (let n = 0; n < QK_K; n += 64) {
    for (let j = 0; j < 32; j++) {
      let l1 = L[n + j];
      if (l1 > 15) {
        l1 -= 16;
        bytes[at + 16 + j] |= m1;
      }
      let l2 = L[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        bytes[at + 16 + j] |= m2;
      }
      bytes[at + 48 + n / 2 + j] = l1 | (l2 << 4);
    }
    m1 <<= 2;
    m2 <<= 2;
  }
}

export const Q5_K = kQuantFormat({ type: GgmlType.Q5_K, name: "Q5_K", typeSize: SIZE, subSize: 32, mins: "scalar", unpack, quantizeBlock });
