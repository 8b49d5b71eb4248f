import "./gemma2.js";
import "./gemma3.js";
import "./llama.js";
import "./phi3.js";
import "./qwen2.js";
import "./qwen2moe.js";
import "./qwen3.js";
import "./qwen3moe.js";

export * from "./model.js";
export * from "./registry.js";
