export * from "./stream-decoder.js";
export * from "./tokenizer.js";
export * from "./vocab.js";
