/** A model that cannot be quantized as asked: printed as one line. */
export class QuantizeError extends Error {}
