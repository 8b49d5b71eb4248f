
import { floatToHalf, HALF_TO_FLOAT, quantFormat, rowBytes } from "../../quant/index.js";
import { dotMasked, ggmlExpf, ggmlGelu, ggmlSilu, hsumFloat8, softcap } from "../../quant/float-order.js";
import { glibcCosf, glibcSinf } from "../../quant/sincosf.js";
import { Weight } from "../../tensor/weight.js";
import { AttentionSegment, AttentionShape, Backend, LayerKv, RopeParams } from "../backend.js";
import { roundQueryForKeys, widenLayer, writeKvRow } from "../kv-format.js";

const f32 = Math.fround;

/**
 * The reference backend: plain TypeScript loops that follow ggml's CPU arithmetic step by step.
 * Every faster backend is tested against this one.
 */
export class ScalarBackend implements Backend {
  readonly name: string = "scalar";

  matmul(w: Weight, x: Float32Array, tokens: number): Float32Array {
    const format = quantFormat(w.type);
    const activation = quantFormat(format.dotType);
    const cols = w.cols;
    const rows = w.rows;
    const wRow = rowBytes(format, cols);
    const aRow = rowBytes(activation, cols);
    const a = new Uint8Array(aRow * tokens);
    for (let t = 0; t < tokens; t++) activation.quantizeRow(x, t * cols, a, t * aRow, cols);
    const out = new Float32Array(tokens * rows);
    for (let t = 0; t < tokens; t++) {
      for (let r = 0; r < rows; r++) out[t * rows + r] = format.vecDot(cols, w.data, r * wRow, a, t * aRow);
    }
    return out;
  }

  matmuls(ws: readonly Weight[], x: Float32Array, tokens: number): Float32Array[] {
    return ws.map((w) => this.matmul(w, x, tokens));
  }

  getRows(w: Weight, ids: ArrayLike<number>): Float32Array {
    const format = quantFormat(w.type);
    const cols = w.cols;
    const out = new Float32Array(ids.length * cols);
    // Row by row from the weight's source: an embedding matrix is not copied whole for a few tokens.
    const row = new Uint8Array(rowBytes(format, cols));
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < w.rows)) throw new RangeError(`token id ${id} is outside ${w.name} (${w.rows} rows)`);
      w.read(id * row.length, row);
      format.dequantizeRow(row, 0, out, i * cols, cols);
    }
    return out;
  }

  toFloat(w: Weight): Float32Array {
    const n = w.cols * w.rows;
    const out = new Float32Array(n);
    quantFormat(w.type).dequantizeRow(w.data, 0, out, 0, n);
    return out;
  }

  rmsNorm(x: Float32Array, gain: Float32Array, eps: number, width: number): Float32Array {
    const out = new Float32Array(x.length);
    for (let row = 0; row < x.length / width; row++) {
      const o = row * width;
      let sum = 0;
      for (let i = 0; i < width; i++) sum += f32(x[o + i] * x[o + i]);
      const mean = f32(sum / width);
      const scale = f32(1 / f32(Math.sqrt(f32(mean + eps))));
      for (let i = 0; i < width; i++) out[o + i] = f32(f32(x[o + i] * scale) * gain[i]);
    }
    return out;
  }

  rope(x: Float32Array, heads: number, headDim: number, positions: ArrayLike<number>, params: RopeParams): void {
    const { dims, ordering } = params;
    const half = dims / 2;
    const { cos, sin } = this.ropeAngles(positions, params);
    for (let t = 0; t < positions.length; t++) {
      const at = t * half;
      for (let h = 0; h < heads; h++) {
        const base = (t * heads + h) * headDim;
        for (let i = 0; i < half; i++) {
          const i0 = ordering === "normal" ? base + 2 * i : base + i;
          const i1 = ordering === "normal" ? i0 + 1 : i0 + half;
          const x0 = x[i0];
          const x1 = x[i1];
          x[i0] = f32(f32(x0 * cos[at + i]) - f32(x1 * sin[at + i]));
          x[i1] = f32(f32(x0 * sin[at + i]) + f32(x1 * cos[at + i]));
        }
      }
    }
  }

  private readonly lastAngles = new WeakMap<RopeParams, { positions: ArrayLike<number>; cos: Float32Array; sin: Float32Array }>();

  /**
   * cos and sin of every rotated pair for each position ([T, dims/2]), times the attention factor
   * (ggml's mscale) when there is one. A forward pass rotates q and k of every layer at the same
   * positions, so each RoPE setting's table of its last call is kept for the next.
   */
  protected ropeAngles(positions: ArrayLike<number>, params: RopeParams): { cos: Float32Array; sin: Float32Array } {
    const last = this.lastAngles.get(params);
    if (last && last.positions.length === positions.length && Array.prototype.every.call(positions, (p: number, i: number) => p === last.positions[i])) {
      return last;
    }
    const mscale = params.attnFactor ?? 1;
    const { dims, freqFactors } = params;
    const half = dims / 2;
    const thetaScale = f32(Math.pow(params.freqBase, f32(-2 / dims)));
    const cos = new Float32Array(positions.length * half);
    const sin = new Float32Array(positions.length * half);
    for (let t = 0; t < positions.length; t++) {
      let theta = f32(positions[t]);
      for (let i = 0; i < half; i++) {
        const factor = freqFactors ? freqFactors[i] : 1;
        const angle = f32(params.freqScale * f32(theta / factor));
        cos[t * half + i] = f32(glibcCosf(angle) * mscale);
        sin[t * half + i] = f32(glibcSinf(angle) * mscale);
        theta = f32(theta * thetaScale);
      }
    }
    const angles = { positions: Array.from(positions), cos, sin };
    this.lastAngles.set(params, angles);
    return angles;
  }

  storeKv(kv: LayerKv, k: Float32Array, v: Float32Array, positions: ArrayLike<number>, kvWidth: number): void {
    const type = kv.type ?? "f16";
    for (let t = 0; t < positions.length; t++) {
      const row = kv.rows ? kv.rows[positions[t]] : positions[t];
      writeKvRow(kv.keys, type, row, k, t * kvWidth, kvWidth);
      writeKvRow(kv.values, type, row, v, t * kvWidth, kvWidth);
    }
  }

  /** Each segment's attention on its own, through `attention`. */
  attendSequences(q: Float32Array, segments: readonly AttentionSegment[], positions: ArrayLike<number>, shape: AttentionShape): Float32Array {
    const qWidth = shape.heads * shape.headDim;
    const out = new Float32Array(q.length);
    for (const { start, length, kv } of segments) {
      const rows = q.subarray(start * qWidth, (start + length) * qWidth);
      out.set(this.attention(rows, kv, Array.prototype.slice.call(positions, start, start + length) as number[], shape), start * qWidth);
    }
    return out;
  }

  attention(q: Float32Array, kv: LayerKv, positions: ArrayLike<number>, shape: AttentionShape): Float32Array {
    const { heads, kvHeads, headDim, scale, window, softcap: cap } = shape;
    const kvWidth = kvHeads * headDim;
    const type = kv.type ?? "f16";
    const { keys, values } = widenLayer(kv, kvWidth, Math.max(...Array.from(positions)) + 1);
    const query = roundQueryForKeys(q, type);
    const groupSize = heads / kvHeads;
    const out = new Float32Array(positions.length * heads * headDim);
    // llama.cpp attends over the cache padded to 32 cells; masked cells add exact zeros, but the padding
    // decides which products take the vector path, so we keep it.
    const cells = Math.ceil((positions[positions.length - 1] + 1) / 32) * 32;
    // ggml hands batches (T ≥ 2) to tinyBLAS and single tokens to its vec_dot kernels; they sum in different orders.
    const order = positions.length > 1 && headDim % 8 === 0 ? "tinyblas" : "vec_dot";
    const probs = new Float32Array(cells);
    const exps = new Float32Array(8);
    for (let t = 0; t < positions.length; t++) {
      const visible = positions[t] + 1;
      // cells before the window are masked: scored −∞, they weigh exactly 0
      const first = window ? Math.max(0, visible - window) : 0;
      for (let h = 0; h < heads; h++) {
        const kvOffset = Math.floor(h / groupSize) * headDim;
        const qOffset = (t * heads + h) * headDim;
        let max = -Infinity;
        for (let j = first; j < visible; j++) {
          const dot = dotMasked(order, headDim, headDim, query, qOffset, keys, j * kvWidth + kvOffset, 1);
          probs[j] = f32((cap ? softcap(dot, cap) : dot) * scale);
          if (probs[j] > max) max = probs[j];
        }
        // ggml_vec_soft_max_f32: vectorised exp in chunks of eight, each chunk summed in f32, then in f64.
        let sum = 0;
        for (let c = 0; c < cells; c += 8) {
          for (let l = 0; l < 8; l++) exps[l] = c + l >= first && c + l < visible ? ggmlExpf(f32(probs[c + l] - max)) : 0;
          probs.set(exps, c);
          sum += hsumFloat8(exps);
        }
        const inv = f32(1 / sum);
        // With an F16 cache the probabilities meet V in an F16 dot product, so they are rounded to F16 too;
        // quantized values are widened to f32 and meet them as they are.
        for (let j = 0; j < visible; j++) probs[j] = type === "f16" ? HALF_TO_FLOAT[floatToHalf(f32(probs[j] * inv))] : f32(probs[j] * inv);
        for (let d = 0; d < headDim; d++) {
          out[qOffset + d] = dotMasked(order, cells, visible, probs, 0, values, kvOffset + d, kvWidth);
        }
      }
    }
    return out;
  }

  swiglu(gate: Float32Array, up: Float32Array): Float32Array {
    const out = new Float32Array(gate.length);
    for (let i = 0; i < gate.length; i++) {
      out[i] = f32(ggmlSilu(gate[i]) * up[i]);
    }
    return out;
  }

  geglu(gate: Float32Array, up: Float32Array): Float32Array {
    const out = new Float32Array(gate.length);
    for (let i = 0; i < gate.length; i++) out[i] = f32(ggmlGelu(gate[i]) * up[i]);
    return out;
  }

  softcapInPlace(x: Float32Array, cap: number): void {
    for (let i = 0; i < x.length; i++) x[i] = softcap(x[i], cap);
  }

  addInPlace(a: Float32Array, b: Float32Array): void {
    for (let i = 0; i < a.length; i++) a[i] = f32(a[i] + b[i]);
  }
}

