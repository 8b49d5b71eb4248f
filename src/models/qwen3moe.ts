import { createDecoder } from "./llama.js";
import { registerArchitecture } from "./registry.js";

/** Qwen3-MoE: Qwen3's attention (per-head Q/K norms, NeoX RoPE) with routed experts whose weights are normalised. */
registerArchitecture("qwen3moe", (context) =>
  createDecoder(context, { ropeOrdering: "neox", attentionBias: false, headNorm: true, experts: { normalize: true, widthKey: "expert_feed_forward_length" } }),
);
