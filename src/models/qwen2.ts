import { createDecoder } from "./llama.js";
import { registerArchitecture } from "./registry.js";

/** Qwen2 and Qwen2.5: Llama's decoder with biases on Q, K and V, and NeoX RoPE. */
registerArchitecture("qwen2", (context) => createDecoder(context, { ropeOrdering: "neox", attentionBias: true }));
