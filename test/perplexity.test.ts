import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Token } from "node-llama-cpp";
import { oracle } from "./helpers/llama-cpp.js";
import { CLI, REPO_ROOT, STORIES, ZOO } from "./helpers/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-ppl-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** llama-perplexity's method with llama.cpp itself computing the probabilities (node-llama-cpp). */
async function llamaCppPerplexity(modelPath: string, tokens: number[], n: number, bos: number): Promise<number> {
  const llama = await oracle();
  const model = await llama.loadModel({ modelPath, useMmap: false });
  const context = await model.createContext({ contextSize: n, threads: 1, batchSize: n, flashAttention: false });
  try {
    const sequence = context.getSequence();
    let nll = 0;
    let count = 0;
    const first = Math.floor(n / 2);
    for (let c = 0; c < Math.floor(tokens.length / n); c++) {
      const chunk = tokens.slice(c * n, (c + 1) * n);
      chunk[0] = bos;
      await sequence.clearHistory();
      const input = chunk.map((token, j) => (j >= first && j < n - 1 ? ([token as Token, { generateNext: { probabilities: true } }] as const) : (token as Token)));
      const outputs = await sequence.controlledEvaluate(input as never);
      for (let j = first; j < n - 1; j++) {
        const probability = outputs[j]?.next.probabilities?.get(tokens[c * n + j + 1] as Token);
        assert.ok(probability !== undefined && probability > 0);
        nll -= Math.log(probability);
        count++;
      }
    }
    return Math.exp(nll / count);
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

describe("tsllm perplexity", () => {
  it("agrees with llama.cpp's probabilities to 4 significant digits on stories260K", async () => {
    const expected = JSON.parse(readFileSync(join(ZOO, "expected", "stories260K.json"), "utf8")) as { cases: { prompt: string; content: string }[] };
    const text = expected.cases.map((c) => c.prompt + c.content).join("\n");
    const textPath = join(scratch, "stories.txt");
    writeFileSync(textPath, text);
    const { status, stdout, stderr } = spawnSync(process.execPath, [CLI, "perplexity", STORIES, "-f", textPath, "-c", "64"], { cwd: REPO_ROOT, encoding: "utf8" });
    assert.equal(status, 0, stderr);
    const ours = Number(/Final estimate: PPL = ([\d.]+) \+\/- [\d.]+/.exec(stdout)?.[1]);
    const tokenized = spawnSync(process.execPath, [CLI, "tokenize", STORIES, "--batch"], { cwd: REPO_ROOT, encoding: "utf8", input: `${JSON.stringify(text)}\n` });
    const tokens = JSON.parse(tokenized.stdout) as number[];
    const chunks = Math.floor(tokens.length / 64);
    assert.ok(chunks >= 4, `${chunks} chunks`);
    assert.match(stdout, new RegExp(`^(\\[\\d\\][\\d.]+,){${chunks}}`));
    const theirs = await llamaCppPerplexity(STORIES, tokens, 64, tokens[0]);
    assert.ok(Number.isFinite(ours) && ours > 1, `${ours}`);
    assert.equal(ours.toPrecision(4), theirs.toPrecision(4), `tsllm ${ours}, llama.cpp ${theirs}`);
    console.log(`perplexity: tsllm ${ours}, llama.cpp ${theirs.toFixed(6)}`);
  });

  it("says how many tokens it needs when the text is too short", () => {
    const short = join(scratch, "short.txt");
    writeFileSync(short, "Once upon a time");
    const { status, stderr } = spawnSync(process.execPath, [CLI, "perplexity", STORIES, "-f", short, "-c", "64"], { cwd: REPO_ROOT, encoding: "utf8" });
    assert.equal(status, 1);
    assert.equal(stderr.split("\n").filter(Boolean).at(-1), "tsllm: the text has 5 tokens; perplexity with a context of 64 needs at least 128");
  });
});
