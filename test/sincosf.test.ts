import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { glibcCosf, glibcSinf } from "../src/quant/sincosf.js";

/**
 * [x, sinf(x), cosf(x)] as float bits, from glibc 2.36's libm (Debian bookworm, through Python's ctypes).
 * All but the last six are inputs where glibc differs from the correctly rounded result (Math.sin and
 * Math.cos rounded to f32): small arguments, the fast reduction below 120, the 4/π table above it.
 */
const GLIBC: [number, number, number][] = [
  [0x3ea81784, 0x3ea516a8, 0x3f7253c0], [0x3e898334, 0x3e87dd80, 0x3f76d277], [0xbe93e76a, 0xbe91db00, 0x3f756484],
  [0x3f1cedd4, 0x3f1348a2, 0x3f51636e], [0xbef62d70, 0xbeeccd19, 0x3f62f967], [0xbf61d0ba, 0xbf45a65a, 0x3f22b29f],
  [0x3f711884, 0x3f4f00dc, 0x3f169e10], [0x3f5331a2, 0x3f3c0a43, 0x3f2db710], [0xbf523202, 0xbf3b5c6f, 0x3f2e727d],
  [0x3f4ba015, 0x3f36d2a4, 0x3f33329c], [0x43fed825, 0x3f2e9d91, 0x3f3b344a], [0xc7537b3f, 0x3e37384e, 0xbf7bde6b],
  [0x46887e4d, 0xbf2f2e52, 0xbf3aacdc], [0x47064cb3, 0xbf470e6c, 0x3f20f94e], [0x4736d080, 0xbe45a722, 0xbf7b2f94],
  [0x7f48d58d, 0x3f655ee6, 0xbee36088], [0xff3fbd61, 0x3f0a2acd, 0x3f578350], [0x7e9e9bcd, 0x3f617eaf, 0xbef26380],
  [0xfebcf21f, 0x3efcbcfd, 0xbf5ea2d9], [0xfec53ee2, 0xbe2b0bd9, 0xbf7c6742],
  [0x00000000, 0x00000000, 0x3f800000], [0x3727c5ac, 0x3727c5ac, 0x3f800000], [0xbf000000, 0xbef57744, 0x3f60a940],
  [0x3f1e5af8, 0x3f1472b4, 0x3f509086], [0x40490fdb, 0xb3bbbd2e, 0xbf800000], [0x501502f9, 0xbef99a64, 0x3f5f84c5],
];

const asFloat = (bits: number): number => new Float32Array(Uint32Array.of(bits).buffer)[0];

describe("glibc's sinf and cosf (RoPE's angles)", () => {
  it("reproduces glibc bit for bit where correct rounding would not", () => {
    let notCorrectlyRounded = 0;
    for (const [x, s, c] of GLIBC.map((row) => row.map(asFloat))) {
      assert.equal(glibcSinf(x), s, `sinf(${x})`);
      assert.equal(glibcCosf(x), c, `cosf(${x})`);
      if (Math.fround(Math.sin(x)) !== s || Math.fround(Math.cos(x)) !== c) notCorrectlyRounded++;
    }
    assert.ok(notCorrectlyRounded >= 20, "the vectors still separate glibc from correct rounding");
  });

  it("gives NaN for infinities and NaN", () => {
    for (const x of [Infinity, -Infinity, NaN]) {
      assert.ok(Number.isNaN(glibcSinf(x)) && Number.isNaN(glibcCosf(x)));
    }
  });
});
