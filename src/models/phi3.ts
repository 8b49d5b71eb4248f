import { createDecoder } from "./llama.js";
import { registerArchitecture } from "./registry.js";

/**
 * Phi-3 / Phi-3.5 / Phi-4: fused QKV and gate-up matrices, NeoX RoPE with LongRoPE's short and long
 * factors (and attention factor) where the file has them, Q scaled after RoPE. Its sliding window is
 * ignored, as llama.cpp ignores it.
 */
registerArchitecture("phi3", (context) => createDecoder(context, { ropeOrdering: "neox", attentionBias: false, fusedProjections: true, scaleQueryAfterRope: true }));
