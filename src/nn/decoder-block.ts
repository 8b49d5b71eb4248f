import { AttentionSegment, Backend, DecoderLayerCall, DecoderLayerWeights, RopeParams } from "../backend/backend.js";
import { FeedForward, GatedFeedForward, RmsNorm, SelfAttention } from "./blocks.js";

/** A pre-norm decoder layer's parts. */
export interface DecoderBlockParts {
  attentionNorm: RmsNorm;
  attention: SelfAttention;
  ffnNorm: RmsNorm;
  ffn: FeedForward;
  /** Gemma's extra norms on the attention's and the FFN's outputs, before each residual add. */
  postNorms?: { attention: RmsNorm; ffn: RmsNorm };
}

/**
 * x + attention(norm(x)), then that + ffn(norm(that)). Where the backend runs such a layer as one piece
 * (DecoderLayerWeights: Q, K and V as three matrices, gate and up as two), it does; else the parts run
 * one after another.
 */
export class DecoderBlock {
  /** The layer as Backend.decoderLayers takes it, where it has that shape. */
  private readonly whole?: DecoderLayerWeights;

  constructor(
    private readonly backend: Backend,
    readonly parts: DecoderBlockParts,
  ) {
    const attention = parts.attention.layerWeights();
    const ffn = parts.ffn instanceof GatedFeedForward ? parts.ffn.layerWeights() : undefined;
    if (backend.decoderLayers && attention && ffn) {
      const postNorms = parts.postNorms && { attention: parts.postNorms.attention.weights, ffn: parts.postNorms.ffn.weights };
      this.whole = { attentionNorm: parts.attentionNorm.weights, ...attention, postNorms, ffnNorm: parts.ffnNorm.weights, ...ffn };
    }
  }

  /** The layer as Backend.decoderLayers takes it over these segments, where it has that shape. */
  call(segments: readonly AttentionSegment[], rope?: RopeParams): DecoderLayerCall | undefined {
    const { shape, rope: own } = this.parts.attention;
    return this.whole && { weights: this.whole, segments, shape, rope: rope ?? own };
  }

  /**
   * The layer's output for x [T, nEmbd], storing K and V in each segment's cache; x goes back to the
   * backend (Backend.recycle). `rope` replaces the attention's own (LongRoPE's factors for a batch).
   */
  forward(x: Float32Array, tokens: number, positions: ArrayLike<number>, segments: readonly AttentionSegment[], rope?: RopeParams): Float32Array {
    const { attentionNorm, attention, ffnNorm, ffn, postNorms } = this.parts;
    const backend = this.backend;
    const call = this.call(segments, rope);
    const whole = call && backend.decoderLayers?.([call], x, positions);
    if (whole) {
      backend.recycle?.(x);
      return whole;
    }
    // Each intermediate goes back to the backend once read, for the next results.
    const normed = (raw: Float32Array, norm: RmsNorm | undefined): Float32Array => {
      if (!norm) return raw;
      const out = norm.forward(raw);
      backend.recycle?.(raw);
      return out;
    };
    const attentionIn = attentionNorm.forward(x);
    const attended = normed(attention.forward(attentionIn, tokens, positions, segments, rope), postNorms?.attention);
    backend.recycle?.(attentionIn);
    backend.addInPlace(attended, x); // residual: h = x + attn(norm(x))
    backend.recycle?.(x);
    const ffnIn = ffnNorm.forward(attended);
    const ffnOut = normed(ffn.forward(ffnIn, tokens), postNorms?.ffn);
    backend.recycle?.(ffnIn);
    backend.addInPlace(ffnOut, attended); // residual: x = h + ffn(norm(h))
    backend.recycle?.(attended);
    return ffnOut;
  }
}

/**
 * x through every block in turn, block i over segmentsOf(i): all of them as one piece where the backend
 * takes them so (Backend.decoderLayers), else block by block. x goes back to the backend.
 */
export function forwardBlocks(
  backend: Backend,
  blocks: readonly DecoderBlock[],
  x: Float32Array,
  tokens: number,
  positions: ArrayLike<number>,
  segmentsOf: (layer: number) => readonly AttentionSegment[],
  rope?: RopeParams,
): Float32Array {
  const calls: DecoderLayerCall[] = [];
  for (let i = 0; i < blocks.length && backend.decoderLayers; i++) {
    const call = blocks[i].call(segmentsOf(i), rope);
    if (!call) break;
    calls.push(call);
  }
  const whole = calls.length === blocks.length ? backend.decoderLayers?.(calls, x, positions) : undefined;
  if (whole) {
    backend.recycle?.(x);
    return whole;
  }
  return blocks.reduce((input, block, i) => block.forward(input, tokens, positions, segmentsOf(i), rope), x);
}
