import "./llama.js";
import "./qwen2.js";

export * from "./model.js";
export * from "./registry.js";
