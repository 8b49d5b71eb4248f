import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openModelFile } from "../engine/load.js";
import { computeBytes, fit, Hardware, kvCacheBytes, usableRam, weightBudget } from "../fit/estimate.js";
import { layoutFromHeader, layoutFromShapeName, ModelLayout, SHAPE_NAMES } from "../fit/layout.js";
import { DecodeRates, loadRates, measureDecodeRates, rateFor, saveRates } from "../fit/measure.js";
import { GgmlType, ggmlTypeFromName, ggmlTypeName } from "../gguf/ggml-types.js";
import { QuantizeError } from "../quantize/errors.js";
import { quantTarget } from "../quantize/file-types.js";
import { storeLayout } from "../store/home.js";
import { hubFromEnvironment, listRepoFiles } from "../store/hub.js";
import { hubReferenceOf, pickFiles } from "../store/pull.js";
import { readRemoteHeader } from "../store/remote-header.js";
import { parseReference } from "../store/reference.js";
import { resolveModel } from "../store/resolve.js";
import { UsageError } from "./fail.js";
import { formatBytes, formatCount, formatTable } from "./format.js";
import { parseBandwidth, parseSize } from "./options.js";

export const FIT_USAGE = `tsllm fit MODEL|SHAPE [--vram 12G] [--ram 24G] [--bandwidth 360GB/s] [--cpu-bandwidth 20GB/s] [-c 2048,4096] [--measure] [-t N]
  memory (weights + KV cache + compute) and decode speed per quant and context; MODEL may be a hub
  reference (only its GGUF header is read); SHAPE one of ${SHAPE_NAMES.join(", ")}.
  --measure times tsllm's kernels on this machine and keeps the rates for later runs`;

const QUANTS = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q3_K_S", "Q2_K"];
const GIB = 2 ** 30;

async function layoutFor(text: string): Promise<{ layout: ModelLayout; isFile: boolean }> {
  const shape = layoutFromShapeName(text);
  if (shape) return { layout: shape, isFile: false };
  const reference = (() => {
    try {
      return parseReference(text);
    } catch {
      return undefined;
    }
  })();
  const hubReference = reference && !text.toLowerCase().endsWith(".gguf") ? hubReferenceOf(reference) : reference?.kind === "hub-file" ? reference : undefined;
  // a local file or a stored model is read from disk; anything else from the hub, header only
  const local = await resolveModel(text, { pull: false }).catch((error: unknown) => {
    if (hubReference) return undefined;
    throw error;
  });
  if (local) {
    const file = openModelFile(local.paths);
    try {
      return { layout: layoutFromHeader(local.name, file.metadata, file.tensors), isFile: true };
    } finally {
      file.close();
    }
  }
  if (!hubReference) throw new UsageError(`'${text}' is not a file, a stored model, a hub reference or a known shape`);
  const hub = hubFromEnvironment();
  const { parts } = pickFiles(hubReference, await listRepoFiles(hub, hubReference.repo, hubReference.revision));
  const headers = [];
  for (const part of parts) headers.push(await readRemoteHeader(hub, hubReference.repo, hubReference.revision, part.path));
  return { layout: layoutFromHeader(`${hubReference.repo}/${parts[0].path}`, headers[0].metadata, headers.flatMap((h) => h.tensors)), isFile: true };
}

export async function fitCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      vram: { type: "string" },
      ram: { type: "string" },
      bandwidth: { type: "string" },
      "cpu-bandwidth": { type: "string" },
      "ctx-size": { type: "string", short: "c" },
      measure: { type: "boolean" },
      threads: { type: "string", short: "t" },
    },
  });
  if (positionals.length !== 1) throw new UsageError(FIT_USAGE);
  const ratesPath = join(storeLayout().root, "fit-rates.json");
  const threads = values.threads === undefined ? availableParallelism() : Number(values.threads);
  if (values.measure) {
    process.stderr.write(`measuring tsllm's decode rate per weight type (${threads} threads) …\n`);
    const measured = measureDecodeRates(threads, (line) => process.stderr.write(`  ${line}\n`));
    saveRates(ratesPath, measured, threads);
  }
  const { layout, isFile } = await layoutFor(positionals[0]);
  const vram = values.vram === undefined ? undefined : parseSize(values.vram, "--vram");
  const ram = values.ram === undefined ? totalmem() : parseSize(values.ram, "--ram");
  const saved = loadRates(ratesPath);
  let cpuNote: string;
  let cpuBandwidth: (type: GgmlType, cols: number) => number;
  let layerSeconds: number | undefined;
  const assumedCpu = values["cpu-bandwidth"] ?? (vram === undefined ? values.bandwidth : undefined);
  if (assumedCpu !== undefined) {
    const rate = parseBandwidth(assumedCpu, values["cpu-bandwidth"] ? "--cpu-bandwidth" : "--bandwidth");
    cpuBandwidth = () => rate;
    cpuNote = `${(rate / 1e9).toFixed(0)} GB/s (given)`;
  } else if (saved) {
    const rates: DecodeRates["rates"] = new Map();
    for (const [name, byWidth] of Object.entries(saved.rates)) {
      const type = ggmlTypeFromName(name);
      if (type !== undefined) rates.set(type, new Map(Object.entries(byWidth).map(([cols, rate]) => [Number(cols), rate])));
    }
    const slowest = Math.min(...[...rates.values()].flatMap((byWidth) => [...byWidth.values()]));
    cpuBandwidth = (type, cols) => rateFor(rates, type, cols) ?? slowest;
    layerSeconds = saved.layerSeconds;
    cpuNote = `tsllm's rates measured ${saved.measuredAt.slice(0, 10)} on ${saved.threads} threads (${[...rates].map(([t, byWidth]) => `${ggmlTypeName(t)} ${Math.min(...byWidth.values()) / 1e9 < 1 ? "<1" : (Math.min(...byWidth.values()) / 1e9).toFixed(0)}–${(Math.max(...byWidth.values()) / 1e9).toFixed(0)}`).join(", ")} GB/s; ${(saved.layerSeconds * 1e6).toFixed(0)} µs a layer besides)`;
  } else {
    cpuBandwidth = () => 20e9;
    cpuNote = "20 GB/s (assumed; run with --measure to time this machine)";
  }
  const hardware: Hardware = {
    vram,
    ram,
    gpuBandwidth: vram === undefined ? undefined : parseBandwidth(values.bandwidth ?? "360GB/s", "--bandwidth"),
    cpuBandwidth,
    layerSeconds,
  };
  const contexts = values["ctx-size"]
    ? values["ctx-size"].split(",").map((c) => {
        const n = Number(c);
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`-c expects context sizes such as 2048,4096, got '${c}'`);
        return n;
      })
    : [2048, 4096, 8192, 32768].filter((c) => c <= layout.trainedContext).slice(0, 3);
  if (contexts.length === 0) contexts.push(layout.trainedContext);

  const parameters = layout.tensors.reduce((s, t) => s + t.dims.reduce((a, b) => a * b, 1), 0);
  const lines = [
    `${layout.name}: ${layout.architecture}, ${formatCount(parameters)} parameters, ${layout.layers} layers, trained context ${layout.trainedContext}`,
    vram === undefined
      ? `hardware: CPU only, RAM ${(ram / GIB).toFixed(1)} GiB (${(usableRam(ram) / GIB).toFixed(1)} usable), decode rate ${cpuNote}`
      : `hardware: GPU ${(vram / GIB).toFixed(1)} GiB at ${((hardware.gpuBandwidth ?? 0) / 1e9).toFixed(0)} GB/s; RAM ${(ram / GIB).toFixed(1)} GiB (${(usableRam(ram) / GIB).toFixed(1)} usable) at ${cpuNote}`,
    `memory = weights + KV cache (F16) + compute buffer; gpu: all on the card; edge: up to a third in RAM; offload: more in RAM; cpu: RAM only; no: does not fit`,
    "",
  ];
  const rows = [["quant", "weights", ...contexts.map((c) => `ctx ${c}`)]];
  const best = new Map<number, string>();
  const targets = [...(isFile ? [{ label: "as is", target: undefined }] : []), ...QUANTS.map((q) => ({ label: q, target: quantTarget(q) }))];
  for (const { label, target } of targets) {
    let weights;
    try {
      weights = weightBudget(layout, target);
    } catch (error) {
      if (!(error instanceof QuantizeError)) throw error;
      rows.push([label, "-", ...contexts.map(() => "n/a (row lengths do not fit its blocks)")]);
      continue;
    }
    const cells = contexts.map((context) => {
      const verdict = fit(weights, layout, context, hardware);
      if (verdict.placement !== "no" && target && !best.has(context)) best.set(context, label);
      const speed = verdict.placement === "no" ? "" : ` ${verdict.tokensPerSecond >= 10 ? verdict.tokensPerSecond.toFixed(0) : verdict.tokensPerSecond.toFixed(1)} tok/s`;
      return `${(verdict.total / GIB).toFixed(1)} GiB ${verdict.placement}${speed}`;
    });
    rows.push([label, formatBytes(weights.total), ...cells]);
  }
  lines.push(formatTable(rows), "");
  for (const context of contexts) {
    lines.push(
      `ctx ${context}: KV cache ${(kvCacheBytes(layout, context) / GIB).toFixed(2)} GiB, compute buffer ${(computeBytes(layout, context) / GIB).toFixed(2)} GiB; ` +
        `largest quant that runs: ${best.get(context) ?? "none"}`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
