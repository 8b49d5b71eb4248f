import "./llama.js";
import "./qwen2.js";
import "./qwen3.js";

export * from "./model.js";
export * from "./registry.js";
