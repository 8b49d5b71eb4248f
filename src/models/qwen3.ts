import { createDecoder } from "./llama.js";
import { registerArchitecture } from "./registry.js";

/** Qwen3 (dense): Llama's decoder with each head of Q and K RMS-normalised before RoPE, and NeoX RoPE. */
registerArchitecture("qwen3", (context) => createDecoder(context, { ropeOrdering: "neox", attentionBias: false, headNorm: true }));
