export * from "./errors.js";
export * from "./ggml-types.js";
export * from "./metadata.js";
export * from "./reader.js";
export * from "./source.js";
export * from "./types.js";
export * from "./writer.js";
export * from "./utf8.js";
