import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadModel, loadTokenizer } from "../src/engine/load.js";
import { GgmlType, GgufFile, ggmlTypeName } from "../src/gguf/index.js";
import { PRESETS } from "../src/synth/presets.js";
import { pureQuant } from "../src/synth/mix.js";
import { synthesizeModel } from "../src/synth/synth.js";
import { llamaCppGreedy, llamaCppTokenize } from "./helpers/llama-cpp.js";
import { describe as describeAgreement, judge, RefStep } from "./helpers/logprobs.js";
import { STORIES, TINY_RANDOM } from "./helpers/paths.js";
import { maxLogprobDelta, teacherForced } from "./helpers/teacher-forced.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-oracle-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const PROMPTS = ["Once upon a time", "The little dog ran", "Lily and Tom went to the park. They", "Tim had a red ball.", "Mom said"];

/** Largest |Δ log-probability| between two llama.cpp runs that differ only in flash attention: its own noise floor. */
function spread(a: RefStep[], b: RefStep[]): number {
  let max = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    for (const t of a[i].top ?? []) {
      const other = b[i].top?.find((u) => u.id === t.id);
      if (other) max = Math.max(max, Math.abs(t.logprob - other.logprob));
    }
    if (a[i].token !== b[i].token) break;
  }
  return max;
}

async function compareLive(modelPath: string, prompts: string[], steps: number, tolerance: number): Promise<string> {
  const loaded = loadModel(modelPath);
  const eos = loaded.tokenizer.vocab.endOfGeneration;
  const verdicts: string[] = [];
  let worst = 0;
  let noise = 0;
  for (const text of prompts) {
    const prompt = loaded.tokenizer.encode(text);
    const reference = await llamaCppGreedy(modelPath, prompt, steps, { banned: [...eos] });
    const withFlash = await llamaCppGreedy(modelPath, prompt, steps, { banned: [...eos], flashAttention: true });
    const ours = teacherForced(loaded.model, prompt, reference.map((r) => r.token), eos);
    const agreement = judge(ours, reference);
    assert.notEqual(agreement.kind, "diverged", `${text}: ${describeAgreement(agreement)}`);
    assert.equal(reference.length, steps);
    worst = Math.max(worst, maxLogprobDelta(ours, reference));
    noise = Math.max(noise, spread(reference, withFlash));
    verdicts.push(describeAgreement(agreement));
  }
  loaded.file.close();
  loaded.backend.dispose?.();
  // a model whose logits llama.cpp itself moves by more than the tolerance between two of its own
  // settings is held to that spread (with a quarter's margin) instead
  const bound = Math.max(tolerance, 1.25 * noise);
  assert.ok(worst <= bound, `max |Δ log-probability| ${worst.toFixed(4)} exceeds ${bound.toFixed(4)} (tolerance ${tolerance}, llama.cpp's own spread ${noise.toFixed(4)})`);
  return `${verdicts.join(" | ")}; max |Δlogprob| ${worst.toFixed(4)} (llama.cpp flash-attention on/off spread ${noise.toFixed(4)})`;
}

describe("live against llama.cpp (node-llama-cpp)", () => {
  it("tokenizes like llama.cpp", async () => {
    for (const model of [STORIES, TINY_RANDOM]) {
      const { file, tokenizer } = loadTokenizer(model);
      for (const text of [...PROMPTS, "naïve café 我愛人工智慧 🐶\n\n  spaces", ""]) {
        assert.deepEqual(tokenizer.encode(text, { addSpecial: false }), await llamaCppTokenize(model, text), `${model}: ${JSON.stringify(text)}`);
      }
      file.close();
    }
  });

  it("stories260K: 5 prompts × 64 greedy tokens", async () => {
    console.log(`  stories260K ${await compareLive(STORIES, PROMPTS, 64, 0.01)}`);
  });

  // Synthetic models: the "small" llama shape with stories260K's vocabulary, written by our own quantizer.
  // Tolerance: F32/F16 differ from llama.cpp only in float summation order (≤ 0.02 nats). Quantized types
  // also re-round activations to 8 bits, so a last-bit difference can move a whole quantization step;
  // llama.cpp's own spread between two of its settings (flash attention on/off, printed) is of the same
  // order, so 0.15 nats is the bound.
  const TYPES: [GgmlType, number][] = [
    [GgmlType.F32, 0.02],
    [GgmlType.F16, 0.02],
    [GgmlType.Q8_0, 0.15],
    [GgmlType.Q4_0, 0.15],
    [GgmlType.Q4_K, 0.15],
    [GgmlType.Q6_K, 0.15],
  ];
  const vocab = GgufFile.open(STORIES);
  after(() => vocab.close());

  it("synthetic Llama-3 shape (rope_freqs scaling, base 500000, tied output, head size 64), F16 and Q8_0", async () => {
    for (const type of [GgmlType.F16, GgmlType.Q8_0]) {
      const path = join(scratch, `synth-llama3-${ggmlTypeName(type)}.gguf`);
      synthesizeModel(path, { shape: PRESETS["small-llama3"], quant: pureQuant(type, ggmlTypeName(type)), vocabFrom: vocab, seed: 11 });
      const file = GgufFile.open(path);
      assert.ok(file.tensor("rope_freqs.weight") && !file.tensor("output.weight"));
      file.close();
      const tolerance = type === GgmlType.F16 ? 0.02 : 0.15;
      console.log(`  llama3 ${ggmlTypeName(type).padEnd(5)} ${await compareLive(path, PROMPTS.slice(0, 2), 64, tolerance)}`);
    }
  });
  for (const [architecture, preset, marker, what] of [
    ["llama", "small-mha", "blk.3.attn_v.weight", "a KV head for every query head, as Llama-2's: single tokens take the lone-heads kernel"],
    ["qwen2", "small", "blk.3.attn_v.bias", "Q/K/V biases, NeoX RoPE"],
    ["qwen3", "small", "blk.3.attn_k_norm.weight", "per-head Q/K RMSNorm, NeoX RoPE"],
    ["llama", "small-moe", "blk.3.ffn_down_exps.weight", "Mixtral: 8 experts, top-2 routing, normalised weights"],
    ["qwen3moe", "small-moe", "blk.3.ffn_gate_exps.weight", "8 experts, top-2, normalised weights, Q/K norms"],
    ["qwen2moe", "small-moe", "blk.3.ffn_gate_inp_shexp.weight", "8 experts, top-2, softmax weights, sigmoid-gated shared expert"],
    ["gemma2", "small-gemma", "blk.3.post_ffw_norm.weight", "window 24 on even layers, soft-capped scores and logits, GeGLU, post-norms, head size 64 ≠ 256/8"],
    ["gemma3", "small-gemma", "blk.3.attn_k_norm.weight", "window 24 on 5 of 6 layers with their own RoPE base, Q/K norms, GeGLU, post-norms"],
    ["phi3", "small-phi3", "rope_factors_long.weight", "fused QKV and gate-up, LongRoPE's long factors and attention factor past an original context of 48"],
  ] as const) {
    it(`synthetic ${architecture}${preset === "small" ? "" : ` (${preset})`} (${what}), F16, Q8_0 and Q4_K`, async () => {
      for (const type of [GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_K]) {
        const path = join(scratch, `synth-${architecture}-${preset}-${ggmlTypeName(type)}.gguf`);
        synthesizeModel(path, { architecture, shape: PRESETS[preset], quant: pureQuant(type, ggmlTypeName(type)), vocabFrom: vocab, seed: 5 });
        const file = GgufFile.open(path);
        assert.equal(file.metadata.get("general.architecture")?.value, architecture);
        assert.ok(file.tensor(marker));
        file.close();
        const tolerance = type === GgmlType.F16 ? 0.02 : 0.15;
        console.log(`  ${architecture}${preset === "small" ? "" : `/${preset}`} ${ggmlTypeName(type).padEnd(5)} ${await compareLive(path, PROMPTS.slice(0, 2), 64, tolerance)}`);
      }
    });
  }
  it("a q8_0 KV cache follows llama.cpp's -ctk q8_0 -ctv q8_0 (flash attention), closer than an F16 cache would", async () => {
    const path = join(scratch, "synth-kv-q8_0.gguf");
    synthesizeModel(path, { shape: PRESETS.small, quant: pureQuant(GgmlType.F16, "F16"), vocabFrom: vocab, seed: 7 });
    const loaded = loadModel(path);
    const eos = loaded.tokenizer.vocab.endOfGeneration;
    const verdicts: string[] = [];
    for (const text of PROMPTS.slice(0, 2)) {
      const prompt = loaded.tokenizer.encode(text);
      const reference = await llamaCppGreedy(path, prompt, 64, { banned: [...eos], flashAttention: true, kvCacheType: "Q8_0" });
      const ours = teacherForced(loaded.model, prompt, reference.map((r) => r.token), eos, false, "q8_0");
      const withF16Cache = teacherForced(loaded.model, prompt, reference.map((r) => r.token), eos, false, "f16");
      const agreement = judge(ours, reference);
      assert.notEqual(agreement.kind, "diverged", `${text}: ${describeAgreement(agreement)}`);
      const delta = maxLogprobDelta(ours, reference);
      const f16Delta = maxLogprobDelta(withF16Cache, reference);
      assert.ok(delta <= 0.02 && delta < f16Delta / 2, `max |Δlogprob| ${delta.toFixed(4)} with a q8_0 cache, ${f16Delta.toFixed(4)} with F16`);
      verdicts.push(`${describeAgreement(agreement)}, max |Δlogprob| ${delta.toFixed(4)} (an F16 cache: ${f16Delta.toFixed(4)})`);
    }
    loaded.file.close();
    loaded.backend.dispose?.();
    console.log(`  kv q8_0 ${verdicts.join(" | ")}`);
  });
  for (const [type, tolerance] of TYPES) {
    it(`synthetic ${ggmlTypeName(type)}: greedy tokens and log-probabilities`, async () => {
      const path = join(scratch, `synth-${ggmlTypeName(type)}.gguf`);
      synthesizeModel(path, { shape: PRESETS.small, quant: pureQuant(type, ggmlTypeName(type)), vocabFrom: vocab, seed: 7 });
      assert.ok(readFileSync(path).length > 100_000);
      console.log(`  ${ggmlTypeName(type).padEnd(5)} ${await compareLive(path, PROMPTS.slice(0, 2), 64, tolerance)}`);
    });
  }
});
