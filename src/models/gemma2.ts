import { createDecoder } from "./llama.js";
import { registerArchitecture } from "./registry.js";

/**
 * Gemma 2: NeoX RoPE, a sliding window on every other layer (the even ones), soft-capped scores and
 * logits, GeGLU, RMSNorm after attention and after the FFN, embeddings times √nEmbd.
 */
registerArchitecture("gemma2", (context) =>
  createDecoder(context, { ropeOrdering: "neox", attentionBias: false, gemma: { slidingLayer: (layer) => layer % 2 === 0, layersOf27B: 46 } }),
);
