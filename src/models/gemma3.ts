import { createDecoder } from "./llama.js";
import { registerArchitecture } from "./registry.js";

/**
 * Gemma 3: Gemma 2's block with per-head Q/K RMSNorm, five sliding-window layers to one global one,
 * and RoPE base 10000 (unscaled) on the sliding layers while the global ones take the file's base and scaling.
 */
registerArchitecture("gemma3", (context) =>
  createDecoder(context, {
    ropeOrdering: "neox",
    attentionBias: false,
    headNorm: true,
    gemma: { slidingLayer: (layer) => layer % 6 < 5, slidingRope: { freqBase: 10000, freqScale: 1 }, layersOf27B: 62 },
  }),
);
