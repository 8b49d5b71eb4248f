/**
 * `npm run bench`: the standard set. Random-weight models with real shapes (TinyLlama-1.1B and
 * Llama-3.2-1B in Q4_0, Q8_0 and Q4_K_M; Qwen2.5-0.5B and Gemma-2-2B in Q4_0, with vocabularies of their
 * real sizes) are generated once into .cache/, then `tsllm bench --compare` measures tsllm and
 * llama.cpp on each in the same run; a table of ratios ends the report.
 * BENCH_QUICK=1 runs short tests on the TinyLlama Q4_0 model only (a smoke run, not a measurement);
 * BENCH_MODELS=qwen2.5-0.5b,llama3.2-1b-Q4_0 keeps the cases of those presets (or preset-type pairs) only.
 */
import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { GgmlType } from "../src/gguf/index.js";
import { pureQuant, quantPlanNamed, QuantPlan } from "../src/synth/mix.js";
import { modelFor, SynthCase } from "./synth-models.js";

const ROOT = resolve(import.meta.dirname, "../..");
const quick = process.env.BENCH_QUICK === "1";

const Q4_K_M = quantPlanNamed("Q4_K_M", () => undefined) as QuantPlan;

const Q4_0 = pureQuant(GgmlType.Q4_0, "Q4_0");
const only = process.env.BENCH_MODELS?.split(",");
const CASES: SynthCase[] = quick
  ? [{ preset: "tinyllama-1.1b", quant: Q4_0 }]
  : [
      ...(["tinyllama-1.1b", "llama3.2-1b"] as const).flatMap((preset) => [Q4_0, pureQuant(GgmlType.Q8_0, "Q8_0"), Q4_K_M].map((quant) => ({ preset, quant }))),
      ...(["qwen2.5-0.5b", "gemma2-2b"] as const).map((preset) => ({ preset, quant: Q4_0 })),
    ].filter((c) => !only || only.includes(c.preset) || only.includes(`${c.preset}-${c.quant.name}`));

const args = quick ? ["-p", "32", "-n", "16", "-r", "1"] : ["-p", "512", "-n", "128", "-r", "3"];
const summary: string[] = ["| model | type | pp ratio | tg ratio |", "| --- | --- | ---: | ---: |"];
for (const c of CASES) {
  const path = modelFor(c);
  const out = execFileSync(process.execPath, [join(ROOT, "bin", "tsllm.js"), "bench", path, ...args, "--compare", "--verbose"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  process.stdout.write(`\n## ${c.preset} ${c.quant.name}\n${out}`);
  const ratios = [...out.matchAll(/\| (pp|tg)\d+ \| ([\d.]+)× \|/g)].map((m) => m[2]);
  summary.push(`| ${c.preset} | ${c.quant.name} | ${ratios[0] ?? "-"}× | ${ratios[1] ?? "-"}× |`);
}
process.stdout.write(`\n## tsllm / llama.cpp (same machine, same run)\n${summary.join("\n")}\n`);
