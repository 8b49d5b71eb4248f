import { GgmlType } from "../gguf/ggml-types.js";
import { signedAbsMax } from "./block-stats.js";
import { QuantFormat } from "./format.js";
import { f32, nearestInt } from "./rounding.js";
import { floatView, int8 } from "./views.js";

/** block_q8_K: d (f32) | qs[256] (int8) | bsums[16] (int16, sums of each 16 quants). The k-quants' activation type. */
export const QK_K = 256;
export const Q8_K_SIZE = 292;

export function q8kScale(bytes: Uint8Array, at: number): number {
  return floatView(bytes, at, 1)[0];
}

export function q8kBlockSum(bytes: Uint8Array, at: number, group: number): number {
  const o = at + 260 + 2 * group;
  return ((bytes[o] | (bytes[o + 1] << 8)) << 16) >> 16;
}

export const Q8_K: QuantFormat = {
  type: GgmlType.Q8_K,
  name: "Q8_K",
  blockSize: QK_K,
  typeSize: Q8_K_SIZE,
  dotType: GgmlType.Q8_K,
  dequantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK_K; b++) {
      const at = so + b * Q8_K_SIZE;
      const d = q8kScale(src, at);
      for (let j = 0; j < QK_K; j++) dst[doff + b * QK_K + j] = f32(d * int8(src[at + 4 + j]));
    }
  },
  quantizeRow(src, so, dst, doff, n) {
    for (let b = 0; b < n / QK_K; b++) {
      const x = so + b * QK_K;
      const at = doff + b * Q8_K_SIZE;
      const { amax, max } = signedAbsMax(src, x, QK_K);
      const view = new DataView(dst.buffer, dst.byteOffset + at, Q8_K_SIZE);
      if (!amax) {
        dst.fill(0, at, at + Q8_K_SIZE);
        continue;
      }
      const iscale = f32(-127 / max);
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let k = 0; k < 16; k++) {
          const v = Math.min(127, nearestInt(f32(iscale * src[x + 16 * g + k])));
          dst[at + 4 + 16 * g + k] = v & 0xff;
          sum += v;
        }
        view.setInt16(260 + 2 * g, sum, true);
      }
      view.setFloat32(0, f32(1 / iscale), true);
    }
  },
  vecDot(n, w, wo, a, ao) {
    let sum = 0;
    for (let b = 0; b < n / QK_K; b++) {
      const x = wo + b * Q8_K_SIZE;
      const y = ao + b * Q8_K_SIZE;
      let sumi = 0;
      for (let j = 0; j < QK_K; j++) sumi += int8(w[x + 4 + j]) * int8(a[y + 4 + j]);
      sum += q8kScale(w, x) * q8kScale(a, y) * sumi;
    }
    return f32(sum);
  },
};
