export * from "./processors.js";
export * from "./rng.js";
export * from "./sampler.js";
