// The kernels module: every export here is callable from the host.
export * from "./matvec";
export * from "./activation";
export * from "./attention";
export * from "./interleaved";
export * from "./float";
export * from "./norm";
export * from "./q8_0";
export * from "./kv";
export * from "./rope";
export * from "./stages";
