import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { GgufFile } from "../src/gguf/index.js";
import { quantTarget } from "../src/quantize/file-types.js";
import { quantizeModel } from "../src/quantize/quantize.js";
import { llamaCppGreedy } from "./helpers/llama-cpp.js";
import { CLI, REPO_ROOT, ZOO } from "./helpers/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-quantize-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
const SOURCE = join(ZOO, "zoo-F32.gguf");

function tsllm(args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

describe("tsllm quantize against llama-quantize's own outputs (the quant zoo)", () => {
  it("Q4_K_M from the command line: the same bytes as llama-quantize, with a progress report, and llama.cpp runs it", async () => {
    const out = join(scratch, "q4_k_m.gguf");
    const { code, stderr } = tsllm(["quantize", SOURCE, out, "Q4_K_M"]);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /quantizing to Q4_K_M: 21\/21 \(100%\)/);
    assert.match(stderr, /wrote .*q4_k_m\.gguf: 7\.1 MB → 1\.1 MB \(Q4_K ×13, F32 ×5, Q6_K ×3\)\n$/);
    assert.ok(readFileSync(out).equals(readFileSync(join(ZOO, "zoo-Q4_K_M-mix.gguf"))), "byte for byte");
    const expected = JSON.parse(readFileSync(join(ZOO, "expected", "zoo-Q4_K_M-mix.json"), "utf8")) as { cases: { prompt_tokens: number[]; tokens: number[] }[] };
    const steps = await llamaCppGreedy(out, expected.cases[0].prompt_tokens, 8);
    assert.deepEqual(steps.map((s) => s.token), expected.cases[0].tokens.slice(0, 8));
  });

  for (const [type, file, pure] of [
    ["Q2_K", "zoo-Q2_K-mix.gguf", false],
    ["Q3_K_M", "zoo-Q3_K_M-mix.gguf", false],
    ["Q5_K_M", "zoo-Q5_K_M-mix.gguf", false],
    ...["F16", "BF16", "Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0", "Q6_K", "Q2_K"].map((t) => [t, `zoo-${t}-pure.gguf`, true]),
    ["Q5_K_S", "zoo-Q5_K_S-pure.gguf", true],
    ["Q4_K_S", "zoo-Q4_K_S-pure.gguf", true],
    ["Q3_K_S", "zoo-Q3_K_S-pure.gguf", true],
  ] as [string, string, boolean][]) {
    it(`${type}${pure ? " --pure" : ""} writes ${file} byte for byte`, () => {
      const target = quantTarget(type);
      assert.ok(target);
      const out = join(scratch, file);
      const input = GgufFile.open(SOURCE);
      try {
        quantizeModel(input, out, target, { pure });
      } finally {
        input.close();
      }
      assert.ok(readFileSync(out).equals(readFileSync(join(ZOO, file))));
    });
  }

  it("refuses to requantize without --allow-requantize, and rows that fit no type", () => {
    const refused = tsllm(["quantize", join(ZOO, "zoo-Q8_0-pure.gguf"), join(scratch, "re.gguf"), "Q4_0"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^tsllm: output\.weight is already Q8_0: requantizing loses quality; pass --allow-requantize to do it anyway\n$/);
    const allowed = tsllm(["quantize", join(ZOO, "zoo-Q8_0-pure.gguf"), join(scratch, "re.gguf"), "Q4_0", "--allow-requantize"]);
    assert.equal(allowed.code, 0, allowed.stderr);
    const unknown = tsllm(["quantize", SOURCE, join(scratch, "x.gguf"), "Q9_9"]);
    assert.match(unknown.stderr, /^tsllm: unknown TYPE 'Q9_9'/);
  });
});
