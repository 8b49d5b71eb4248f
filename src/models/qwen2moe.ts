import { createDecoder } from "./llama.js";
import { registerArchitecture } from "./registry.js";

/** Qwen2-MoE (Qwen1.5-MoE): Qwen2's attention with routed experts (weights kept as the softmax gives them) plus a sigmoid-gated shared expert. */
registerArchitecture("qwen2moe", (context) =>
  createDecoder(context, { ropeOrdering: "neox", attentionBias: true, experts: { normalize: false, widthKey: "expert_feed_forward_length", shared: true } }),
);
