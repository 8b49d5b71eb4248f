import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { STORIES } from "./helpers/paths.js";
import { tsllmAsync } from "./helpers/cli.js";
import { TestHub } from "./helpers/test-hub.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-fit-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const tsllm = (args: string[], env: Record<string, string> = {}): ReturnType<typeof tsllmAsync> => tsllmAsync(args, { TSLLM_HOME: scratch, ...env });

/** The table's rows by quant: weights and the one context column. */
function rowsOf(stdout: string): Map<string, { weights: string; cell: string }> {
  const rows = new Map<string, { weights: string; cell: string }>();
  for (const line of stdout.split("\n")) {
    const match = /^(\S+)\s+([\d.]+ [KMG]?B)\s+(.+)$/.exec(line);
    if (match) rows.set(match[1], { weights: match[2], cell: match[3].trim() });
  }
  return rows;
}

describe("tsllm fit", () => {
  const card = ["--vram", "12G", "--ram", "16G", "--bandwidth", "360GB/s", "--cpu-bandwidth", "40GB/s", "-c", "4096"];

  it("reproduces the 12 GB card's rule of thumb: 7B at F16 and 13B at Q8_0 at the edge, 30B at Q4, 70B only at 2-bit", async () => {
    const seven = rowsOf((await tsllm(["fit", "llama2-7b", ...card])).stdout);
    assert.match(seven.get("F16")?.cell ?? "", /^14\.9 GiB edge /);
    assert.match(seven.get("Q8_0")?.cell ?? "", /^9\.1 GiB gpu /);
    const thirteen = await tsllm(["fit", "llama2-13b", ...card]);
    const thirteenRows = rowsOf(thirteen.stdout);
    assert.match(thirteenRows.get("Q8_0")?.cell ?? "", / edge /);
    assert.match(thirteenRows.get("F16")?.cell ?? "", / no$/);
    assert.match(thirteen.stdout, /largest quant that runs: Q8_0$/m);
    const thirty = await tsllm(["fit", "llama-30b", ...card]);
    assert.match(rowsOf(thirty.stdout).get("Q5_K_M")?.cell ?? "", / no$/);
    assert.match(rowsOf(thirty.stdout).get("Q4_K_M")?.cell ?? "", / offload /);
    assert.match(thirty.stdout, /largest quant that runs: Q4_K_M$/m);
    const seventy = await tsllm(["fit", "llama2-70b", ...card]);
    const seventyRows = rowsOf(seventy.stdout);
    assert.match(seventyRows.get("Q3_K_S")?.cell ?? "", / no$/);
    assert.match(seventyRows.get("Q2_K")?.cell ?? "", / offload /);
    assert.match(seventy.stdout, /largest quant that runs: Q2_K$/m);

    // weight sizes as llama-quantize makes them: the published Llama-2 GGUFs weigh 4.08 GB (7B Q4_K_M),
    // 7.16 GB (7B Q8_0), 13.83 GB (13B Q8_0) and 41.42 GB (70B Q4_K_M)
    assert.equal(seven.get("Q4_K_M")?.weights, "4.1 GB");
    assert.equal(seven.get("Q8_0")?.weights, "7.2 GB");
    assert.equal(thirteenRows.get("Q8_0")?.weights, "13.8 GB");
    assert.equal(seventyRows.get("Q4_K_M")?.weights, "41.4 GB");
  });

  it("decode speed follows bandwidth: a model on the card reads its weights once a token at 360 GB/s", async () => {
    const rows = rowsOf((await tsllm(["fit", "llama2-7b", ...card])).stdout);
    // 7.16 GB of Q8_0 weights less the embedding table (0.14 GB), plus half the 2 GiB KV cache: ~7.1 GB a token
    const speed = Number(/gpu ([\d.]+) tok\/s/.exec(rows.get("Q8_0")?.cell ?? "")?.[1]);
    assert.ok(Math.abs(speed - 360 / 8.1) < 1.5, `${speed} tok/s`);
  });

  describe("a hub reference", () => {
    const hub = new TestHub({ repos: { "ggml-org/models": [{ path: "tinyllamas/stories260K.gguf", source: STORIES }] } });
    before(() => hub.start());
    after(() => hub.stop());

    it("is sized from its GGUF header alone, read with a Range request", async () => {
      const { code, stdout, stderr } = await tsllm(["fit", "hf:ggml-org/models/tinyllamas/stories260K.gguf", "--ram", "2G", "--cpu-bandwidth", "10GB/s", "-c", "512"], { HF_ENDPOINT: hub.endpoint });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^ggml-org\/models\/tinyllamas\/stories260K\.gguf: llama, 292\.8K parameters, 5 layers, trained context 2048$/m);
      assert.match(stdout, /^as is\s+1\.2 MB\s+[\d.]+ GiB cpu [\d.]+ tok\/s$/m);
      const downloads = hub.requests.filter((r) => r.url.startsWith("/cdn/"));
      assert.ok(downloads.length > 0 && downloads.every((r) => r.range === "bytes=0-1048575"), JSON.stringify(downloads));
    });
  });
});
