import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { GgmlType, GgufFile, ggmlTypeName } from "../src/gguf/index.js";
import { floatToHalf, HALF_TO_FLOAT, quantFormat, rowBytes, floatToBf16, bf16ToFloat } from "../src/quant/index.js";
import { NormalSource } from "../src/synth/normal.js";
import { ZOO } from "./helpers/paths.js";

/** Each pure zoo file is llama-quantize --pure applied to zoo-F32.gguf. */
const ZOO_PURE: [string, GgmlType][] = [
  ["F16", GgmlType.F16],
  ["BF16", GgmlType.BF16],
  ["Q8_0", GgmlType.Q8_0],
  ["Q5_1", GgmlType.Q5_1],
  ["Q5_0", GgmlType.Q5_0],
  ["Q4_1", GgmlType.Q4_1],
  ["Q4_0", GgmlType.Q4_0],
  ["Q6_K", GgmlType.Q6_K],
  ["Q5_K_S", GgmlType.Q5_K],
  ["Q4_K_S", GgmlType.Q4_K],
  ["Q3_K_S", GgmlType.Q3_K],
  ["Q2_K", GgmlType.Q2_K],
];

function floatsOf(file: GgufFile, name: string): Float32Array {
  const info = file.tensor(name);
  assert.ok(info && info.type === GgmlType.F32, `${name} missing or not F32`);
  return new Float32Array(file.readTensorData(info).buffer);
}

function dequantize(type: GgmlType, bytes: Uint8Array, cols: number, rows: number): Float32Array {
  const f = quantFormat(type);
  const out = new Float32Array(cols * rows);
  for (let r = 0; r < rows; r++) f.dequantizeRow(bytes, r * rowBytes(f, cols), out, r * cols, cols);
  return out;
}

function rmse(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return Math.sqrt(sum / a.length);
}

describe("quantization against llama-quantize (quant zoo)", () => {
  const source = GgufFile.open(join(ZOO, "zoo-F32.gguf"));
  for (const [label, type] of ZOO_PURE) {
    it(`${label}: our quantizer writes llama.cpp's bytes, and RMSE is no worse`, () => {
      const reference = GgufFile.open(join(ZOO, `zoo-${label}-pure.gguf`));
      const format = quantFormat(type);
      let compared = 0;
      let oursSq = 0;
      let theirsSq = 0;
      let count = 0;
      for (const t of reference.tensors) {
        if (t.type !== type) continue;
        const original = floatsOf(source, t.name);
        const cols = t.dims[0];
        const rows = original.length / cols;
        const ours = new Uint8Array(t.byteSize);
        for (let r = 0; r < rows; r++) format.quantizeRow(original, r * cols, ours, r * rowBytes(format, cols), cols);
        const theirs = reference.readTensorData(t);
        assert.ok(Buffer.from(ours).equals(Buffer.from(theirs)), `${t.name}: quantized bytes differ from llama-quantize's`);
        oursSq += rmse(original, dequantize(type, ours, cols, rows)) ** 2 * original.length;
        theirsSq += rmse(original, dequantize(type, theirs, cols, rows)) ** 2 * original.length;
        count += original.length;
        compared++;
      }
      reference.close();
      assert.ok(compared >= 14, `only ${compared} ${ggmlTypeName(type)} tensors compared`);
      const ours = Math.sqrt(oursSq / count);
      const theirs = Math.sqrt(theirsSq / count);
      console.log(`  ${label.padEnd(7)} tensors ${compared}, RMSE ours ${ours.toExponential(4)}, llama.cpp ${theirs.toExponential(4)}`);
      assert.ok(ours <= theirs * (1 + 1e-12));
    });
  }
});

describe("dot products against f32 math", () => {
  const normal = new NormalSource(99);
  const n = 512;
  const x = normal.fill(new Float32Array(n), 1);
  const y = normal.fill(new Float32Array(n), 1);
  for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K]) {
    it(`${ggmlTypeName(type)} · ${ggmlTypeName(quantFormat(type).dotType)} equals the dot of the dequantized rows`, () => {
      const w = quantFormat(type);
      const a = quantFormat(w.dotType);
      const wb = new Uint8Array(rowBytes(w, n));
      const ab = new Uint8Array(rowBytes(a, n));
      w.quantizeRow(x, 0, wb, 0, n);
      a.quantizeRow(y, 0, ab, 0, n);
      const wx = dequantize(type, wb, n, 1);
      const ay = dequantize(w.dotType, ab, n, 1);
      let exact = 0;
      let scale = 0;
      for (let i = 0; i < n; i++) {
        exact += wx[i] * ay[i];
        scale += Math.abs(wx[i] * ay[i]);
      }
      const got = w.vecDot(n, wb, 0, ab, 0);
      // Q8_1 stores s = d·Σq as f16, so the min term of Q4_1/Q5_1 carries f16 rounding (2^-11 relative).
      const relative = w.dotType === GgmlType.Q8_1 ? 2e-3 : 1e-5;
      assert.ok(Math.abs(got - exact) <= relative * scale, `${got} vs ${exact}`);
      // and the quantized dot stays close to the unquantized one, within the type's own error
      let reference = 0;
      for (let i = 0; i < n; i++) reference += x[i] * y[i];
      const tolerance = { [GgmlType.Q2_K]: 0.35, [GgmlType.Q3_K]: 0.2 }[type as number] ?? 0.1;
      assert.ok(Math.abs(got - reference) <= tolerance * Math.sqrt(n), `${got} far from ${reference}`);
    });
  }
});

describe("half and bfloat16 conversions", () => {
  it("round-trip every finite f16 value", () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = HALF_TO_FLOAT[h];
      if (!Number.isFinite(v)) continue;
      const back = floatToHalf(v);
      assert.ok(back === h || (v === 0 && (back & 0x7fff) === 0), `0x${h.toString(16)} came back as 0x${back.toString(16)}`);
    }
  });

  it("round to nearest even at the halfway points", () => {
    // 1 + 2^-11 lies exactly between 1 and the next half (1 + 2^-10): ties go to the even mantissa.
    assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00);
    assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(floatToHalf(65520), 0x7c00);
    assert.equal(floatToHalf(2 ** -25), 0);
    assert.equal(floatToHalf(2 ** -25 + 2 ** -40), 1);
  });

  it("bf16 rounds to nearest even", () => {
    assert.equal(bf16ToFloat(floatToBf16(1 + 2 ** -8)), 1);
    assert.equal(bf16ToFloat(floatToBf16(1 + 3 * 2 ** -8)), 1 + 2 ** -6);
  });
});
