import { SeededRandom } from "../sampling/rng.js";

/** Normally distributed values from a seeded generator (Box–Muller). */
export class NormalSource {
  private readonly uniform: SeededRandom;
  private spare: number | undefined;

  constructor(seed: number) {
    this.uniform = new SeededRandom(seed);
  }

  next(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const u = 1 - this.uniform.next();
    const v = this.uniform.next();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }

  fill(out: Float32Array, std: number, mean = 0): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.next();
    return out;
  }
}
