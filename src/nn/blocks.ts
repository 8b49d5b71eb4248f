import { AttentionShape, Backend, LayerKv, RopeParams } from "../backend/backend.js";
import { Weight } from "../tensor/weight.js";

/** y = x·Wᵀ for [T, in] → [T, out]. */
export class Linear {
  constructor(
    private readonly backend: Backend,
    readonly weight: Weight,
  ) {}

  get outFeatures(): number {
    return this.weight.rows;
  }

  forward(x: Float32Array, tokens: number): Float32Array {
    return this.backend.matmul(this.weight, x, tokens);
  }
}

export class RmsNorm {
  private readonly gain: Float32Array;

  constructor(
    private readonly backend: Backend,
    weight: Weight,
    private readonly eps: number,
  ) {
    this.gain = backend.toFloat(weight);
  }

  forward(x: Float32Array): Float32Array {
    return this.backend.rmsNorm(x, this.gain, this.eps, this.gain.length);
  }
}

export interface AttentionWeights {
  q: Weight;
  k: Weight;
  v: Weight;
  output: Weight;
}

/** Multi-head self-attention with grouped KV heads, RoPE and an F16 KV cache. */
export class SelfAttention {
  /** Q, K and V, multiplied with one input together. */
  private readonly qkv: readonly Weight[];
  private readonly output: Linear;

  constructor(
    private readonly backend: Backend,
    weights: AttentionWeights,
    private readonly shape: AttentionShape,
    private readonly rope: RopeParams,
  ) {
    this.qkv = [weights.q, weights.k, weights.v];
    this.output = new Linear(backend, weights.output);
  }

  forward(x: Float32Array, tokens: number, positions: ArrayLike<number>, kv: LayerKv): Float32Array {
    const { heads, kvHeads, headDim } = this.shape;
    // q [T, heads·headDim], k and v [T, kvHeads·headDim]
    const [q, k, v] = this.backend.matmuls(this.qkv, x, tokens);
    this.backend.rope(q, heads, headDim, positions, this.rope);
    this.backend.rope(k, kvHeads, headDim, positions, this.rope);
    this.backend.storeKv(kv, k, v, positions, kvHeads * headDim);
    const attended = this.backend.attention(q, kv, positions, this.shape); // [T, heads·headDim]
    return this.output.forward(attended, tokens); // [T, nEmbd]
  }
}

export interface FeedForwardWeights {
  gate: Weight;
  up: Weight;
  down: Weight;
}

/** down(silu(gate(x)) · up(x)) */
export class SwiGluFeedForward {
  /** Gate and up, multiplied with one input together. */
  private readonly gateUp: readonly Weight[];
  private readonly down: Linear;

  constructor(
    private readonly backend: Backend,
    weights: FeedForwardWeights,
  ) {
    this.gateUp = [weights.gate, weights.up];
    this.down = new Linear(backend, weights.down);
  }

  forward(x: Float32Array, tokens: number): Float32Array {
    const [gate, up] = this.backend.matmuls(this.gateUp, x, tokens);
    const hidden = this.backend.swiglu(gate, up); // [T, nFf]
    return this.down.forward(hidden, tokens); // [T, nEmbd]
  }
}
