import { Backend } from "../backend/backend.js";
import { softmaxInPlace } from "../quant/float-order.js";
import { Weight } from "../tensor/weight.js";
import { FeedForward, FeedForwardWeights, GatedFeedForward } from "./blocks.js";

const f32 = Math.fround;
/** ggml_clamp's floor for the sum of the chosen weights: F16's smallest normal. */
const MIN_WEIGHT_SUM = 6.103515625e-5;

export interface ExpertRouting {
  /** Experts each token uses (expert_used_count). */
  used: number;
  /** Divide the chosen experts' probabilities by their sum (Mixtral, Qwen3-MoE), or keep them (Qwen2-MoE). */
  normalize: boolean;
}

export interface MoeWeights {
  /** ffn_gate_inp: [nEmbd, experts], one logit per expert. */
  router: Weight;
  experts: FeedForwardWeights[];
  /** An expert every token uses (Qwen2-MoE's ffn_*_shexp), scaled by sigmoid(x · gate) when a gate is given. */
  shared?: { weights: FeedForwardWeights; gate?: Weight };
}

/** The experts each token chose, in order of preference, and the weight each gets. */
export interface Routes {
  experts: Int32Array;
  weights: Float32Array;
}

/**
 * llama.cpp's routing (build_moe_ffn with softmax gating): softmax over the router's logits, the `used`
 * most probable experts (argsort, descending), their probabilities as weights, normalised by their
 * f64 sum when asked. Returns [T, used] experts and weights.
 */
export function routeTokens(logits: Float32Array, experts: number, tokens: number, routing: ExpertRouting): Routes {
  const { used } = routing;
  const chosen = new Int32Array(tokens * used);
  const weights = new Float32Array(tokens * used);
  const order = Array.from({ length: experts }, (_, i) => i);
  for (let t = 0; t < tokens; t++) {
    softmaxInPlace(logits, t * experts, experts);
    const probs = logits.subarray(t * experts, (t + 1) * experts);
    order.sort((a, b) => probs[b] - probs[a] || a - b);
    let sum = 0;
    for (let k = 0; k < used; k++) {
      chosen[t * used + k] = order[k];
      weights[t * used + k] = probs[order[k]];
      sum += probs[order[k]];
    }
    if (routing.normalize) {
      const divisor = Math.max(f32(sum), MIN_WEIGHT_SUM);
      for (let k = 0; k < used; k++) weights[t * used + k] = f32(weights[t * used + k] / divisor);
    }
  }
  return { experts: chosen, weights };
}

/**
 * A mixture-of-experts feed-forward layer: each token goes through the SwiGLU experts its router
 * picks, and their outputs are summed with the routing weights (expert by expert in order of
 * preference, as llama.cpp adds them). Each expert computes all of its tokens in one batch.
 */
export class MoeFeedForward implements FeedForward {
  private readonly experts: GatedFeedForward[];
  private readonly shared?: { ffn: GatedFeedForward; gate?: Weight };

  constructor(
    private readonly backend: Backend,
    private readonly weights: MoeWeights,
    private readonly routing: ExpertRouting,
  ) {
    this.experts = weights.experts.map((expert) => new GatedFeedForward(backend, expert));
    if (weights.shared) this.shared = { ffn: new GatedFeedForward(backend, weights.shared.weights), gate: weights.shared.gate };
  }

  forward(x: Float32Array, tokens: number): Float32Array {
    const width = x.length / tokens;
    const count = this.experts.length;
    const { used } = this.routing;
    const routes = routeTokens(this.backend.matmul(this.weights.router, x, tokens), count, tokens, this.routing);
    // each token's expert outputs, already weighted: [T, used, width]
    const weighted = new Float32Array(tokens * used * width);
    for (let e = 0; e < count; e++) {
      const slots: number[] = [];
      for (let slot = 0; slot < tokens * used; slot++) if (routes.experts[slot] === e) slots.push(slot);
      if (slots.length === 0) continue;
      const input = new Float32Array(slots.length * width);
      slots.forEach((slot, i) => input.set(x.subarray(Math.floor(slot / used) * width, (Math.floor(slot / used) + 1) * width), i * width));
      const output = this.experts[e].forward(input, slots.length);
      slots.forEach((slot, i) => {
        const weight = routes.weights[slot];
        for (let j = 0; j < width; j++) weighted[slot * width + j] = f32(output[i * width + j] * weight);
      });
    }
    const out = new Float32Array(tokens * width);
    for (let t = 0; t < tokens; t++) {
      const row = out.subarray(t * width, (t + 1) * width);
      row.set(weighted.subarray(t * used * width, (t * used + 1) * width));
      for (let k = 1; k < used; k++) {
        const from = (t * used + k) * width;
        for (let j = 0; j < width; j++) row[j] = f32(row[j] + weighted[from + j]);
      }
    }
    if (this.shared) this.addShared(out, x, tokens);
    return out;
  }

  /** Qwen2-MoE: out += sigmoid(x · gate) · sharedExpert(x). */
  private addShared(out: Float32Array, x: Float32Array, tokens: number): void {
    const shared = this.shared as NonNullable<MoeFeedForward["shared"]>;
    const width = out.length / tokens;
    const y = shared.ffn.forward(x, tokens);
    if (shared.gate) {
      const gate = this.backend.matmul(shared.gate, x, tokens);
      for (let t = 0; t < tokens; t++) {
        const scale = f32(1 / f32(1 + f32(Math.exp(-gate[t]))));
        for (let j = 0; j < width; j++) y[t * width + j] = f32(y[t * width + j] * scale);
      }
    }
    this.backend.addInPlace(out, y);
  }
}
