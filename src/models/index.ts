import "./llama.js";

export * from "./model.js";
export * from "./registry.js";
