import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { GgufFile } from "../src/gguf/index.js";
import { llamaCppTokenize } from "./helpers/llama-cpp.js";
import { CLI, MODELS, REPO_ROOT, STORIES, VOCAB_DIR, ZOO } from "./helpers/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-cli-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function tsllm(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: "utf8", input, timeout: 120_000 });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const expected = JSON.parse(readFileSync(join(ZOO, "expected", "stories260K.json"), "utf8")) as {
  cases: { prompt: string; prompt_tokens: number[]; tokens: number[]; content: string }[];
};

describe("tsllm run", () => {
  it("the README's main command: a model name found through TSLLM_MODELS=../shared/models", () => {
    const env = { ...process.env, TSLLM_MODELS: "../shared/models", TSLLM_HOME: join(scratch, "home") };
    const story = spawnSync(process.execPath, [CLI, "run", "stories260K", "Once upon a time"], { cwd: REPO_ROOT, encoding: "utf8", env });
    assert.equal(story.status, 0, story.stderr);
    assert.ok(story.stdout.trim().length > 0);
    const greedy = spawnSync(process.execPath, [CLI, "run", "stories260K", "Once upon a time", "-n", "64", "--temp", "0"], { cwd: REPO_ROOT, encoding: "utf8", env });
    assert.equal(greedy.stdout, `${expected.cases[0].content}\n`);
  });

  it("prints llama.cpp's greedy story for the README command, and a summary on stderr", () => {
    const { code, stdout, stderr } = tsllm(["run", STORIES, "Once upon a time", "-n", "64", "--temp", "0"]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, `${expected.cases[0].content}\n`);
    assert.match(stderr, /^prompt 5 tokens \([\d.]+ tok\/s\), generated 64 tokens \([\d.]+ tok\/s\), load \d+ ms/);
  });

  it("--json gives prompt tokens, tokens, text and logprobs", () => {
    const c = expected.cases[1];
    const { code, stdout } = tsllm(["run", STORIES, c.prompt, "-n", "64", "--temp", "0", "--json", "--logprobs", "3"]);
    assert.equal(code, 0);
    const result = JSON.parse(stdout) as { prompt_tokens: number[]; tokens: number[]; text: string; logprobs: { id: number; logprob: number }[][] };
    assert.deepEqual(result.prompt_tokens, c.prompt_tokens);
    assert.deepEqual(result.tokens, c.tokens);
    assert.equal(result.text, c.content);
    assert.equal(result.logprobs.length, 64);
    assert.equal(result.logprobs[0].length, 3);
    assert.equal(result.logprobs[0][0].id, c.tokens[0]);
  });

  it("reproduces a sampled run from its seed, and differs under another seed", () => {
    const run = (seed: string): string => tsllm(["run", STORIES, "Once upon a time", "-n", "40", "--temp", "1", "--seed", seed, "--json"]).stdout;
    assert.equal(run("42"), run("42"));
    assert.notEqual(run("42"), run("43"));
  });

  it("stops at end-of-generation unless --ignore-eos", () => {
    // In llama.cpp's greedy run of zoo-Q2_K-pure (taken with ignore_eos), EOS is the top token at step 19.
    const zoo = JSON.parse(readFileSync(join(ZOO, "expected", "zoo-Q2_K-pure.json"), "utf8")) as typeof expected;
    const model = join(ZOO, "zoo-Q2_K-pure.gguf");
    const run = (extra: string[]): { tokens: number[] } =>
      JSON.parse(tsllm(["run", model, zoo.cases[0].prompt, "-n", "32", "--temp", "0", "--json", ...extra]).stdout) as { tokens: number[] };
    assert.deepEqual(run([]).tokens, zoo.cases[0].tokens.slice(0, 19));
    assert.deepEqual(run(["--ignore-eos"]).tokens, zoo.cases[0].tokens);
  });

  it("fails with one line and exit code 1 on bad input", () => {
    const notGguf = join(scratch, "notes.txt");
    writeFileSync(notGguf, "hello, not a model");
    const cases: [string[], RegExp][] = [
      [["run", join(scratch, "missing.gguf"), "hi"], /no such file/],
      [["run", notGguf, "hi"], /not a GGUF file/],
      [["run", join(MODELS, "legacy", "tinyllamas-stories-260k-f32.gguf"), "hi"], /version 1 is no longer supported/],
      [["run", join(VOCAB_DIR, "ggml-vocab-bert-bge.gguf"), "hi"], /unsupported architecture 'bert'/],
      [["run", STORIES, "hi", "--temp", "warm"], /--temp expects a number/],
      [["run", STORIES], /missing PROMPT/],
      [["frobnicate"], /unknown command/],
      [["serve", STORIES, "--port", "99999"], /--port must be a TCP port, 0 to 65535/],
    ];
    for (const [args, pattern] of cases) {
      const { code, stderr, stdout } = tsllm(args);
      assert.equal(code, 1, args.join(" "));
      assert.equal(stdout, "");
      assert.match(stderr, pattern);
      assert.ok(!stderr.includes("    at "), `stack trace for ${args.join(" ")}`);
    }
  });
});

describe("tsllm tokenize and show", () => {
  it("prints ids, honours --no-bos and --special, and shows pieces", () => {
    assert.equal(tsllm(["tokenize", STORIES, "Once upon a time"]).stdout, "[1,403,407,261,378]\n");
    assert.equal(tsllm(["tokenize", STORIES, "Once upon a time", "--no-bos"]).stdout, "[403,407,261,378]\n");
    const phi3 = join(VOCAB_DIR, "ggml-vocab-phi-3.gguf");
    assert.ok(!JSON.parse(tsllm(["tokenize", phi3, "<|user|>"]).stdout).includes(32010));
    assert.deepEqual(JSON.parse(tsllm(["tokenize", phi3, "<|user|>", "--special", "--no-bos"]).stdout), [32010]);
    const pieces = JSON.parse(tsllm(["tokenize", STORIES, "a cat", "--pieces"]).stdout) as { id: number; piece: string }[];
    assert.equal(pieces.map((p) => p.piece).join(""), "<s> a cat");
  });

  it("--batch reads JSON lines and loads the model once", () => {
    const { code, stdout } = tsllm(["tokenize", STORIES, "--batch", "--no-bos"], '"Once upon a time"\n"Mom said"\n');
    assert.equal(code, 0);
    assert.deepEqual(stdout.trim().split("\n").map((l) => JSON.parse(l)), [expected.cases[0].prompt_tokens.slice(1), expected.cases[4].prompt_tokens.slice(1)]);
  });

  it("shows architecture, parameters, types, context, vocab and template", () => {
    const { stdout } = tsllm(["show", join(ZOO, "zoo-Q4_K_M-mix.gguf")]);
    assert.match(stdout, /architecture\s+llama/);
    assert.match(stdout, /parameters\s+1\.77M/);
    assert.match(stdout, /tensor types\s+Q4_K ×13, F32 ×5, Q6_K ×3/);
    assert.match(stdout, /context length\s+1024/);
    assert.match(stdout, /vocab\s+llama \(512 tokens\)/);
    assert.match(stdout, /chat template: none/);
    assert.match(tsllm(["show", join(VOCAB_DIR, "ggml-vocab-phi-3.gguf")]).stdout, /^chat template:\n\{\{ bos_token \}\}\{% for message in messages %\}/m);
  });
});

describe("tsllm bench", () => {
  it("reports llama-bench's fields for each engine and test (figures are not asserted: benchmarks are not tests)", () => {
    const { code, stdout, stderr } = tsllm(["bench", STORIES, "-p", "16", "-n", "8", "-r", "2", "-o", "json"]);
    assert.equal(code, 0, stderr);
    const rows = JSON.parse(stdout) as Record<string, unknown>[];
    assert.deepEqual(rows.map((r) => [r.engine, r.n_prompt, r.n_gen, r.n_depth]), [["tsllm", 16, 0, 0], ["tsllm", 0, 8, 0]]);
    for (const row of rows) {
      for (const key of ["model_filename", "model_type", "n_threads", "avg_ts", "stddev_ts"]) assert.ok(key in row, key);
      assert.equal((row.samples_ts as number[]).length, 2);
    }
  });

  it("-d starts each test at a depth and names it as llama-bench does", () => {
    const { code, stdout, stderr } = tsllm(["bench", STORIES, "-p", "0", "-n", "4", "-d", "16", "-r", "1"]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /\| tsllm \| \d+ \| tg4 @ d16 \|/);
  });
});

describe("chat templates", () => {
  it("renders the model's template and tokenizes it as llama.cpp does, without a second BOS", async () => {
    // A tiny random model with Phi-3's real vocabulary and chat template.
    const model = join(scratch, "phi3-vocab.gguf");
    const made = tsllm(["dev", "synth", "--preset", "tiny", "--type", "F16", "--vocab-from", join(VOCAB_DIR, "ggml-vocab-phi-3.gguf"), "-o", model]);
    assert.equal(made.code, 0, made.stderr);
    const promptOf = (text: string): number[] =>
      (JSON.parse(tsllm(["run", model, text, "-n", "1", "--temp", "0", "--json"]).stdout) as { prompt_tokens: number[] }).prompt_tokens;
    const benign = promptOf("Hello there");
    assert.deepEqual(benign, await llamaCppTokenize(model, "<s><|user|>\nHello there<|end|>\n<|assistant|>\n", true));
    assert.equal(benign.filter((id) => id === 1).length, 1, "exactly one BOS");
    // A user typing "<|end|>" gets text, not the control token: the template's own marker stays the only one.
    const END = 32007;
    const hostile = promptOf("Hello <|end|> there");
    assert.equal(hostile.filter((id) => id === END).length, 1);
    assert.deepEqual(hostile.slice(-5), benign.slice(-5));
  });
});

describe("tsllm dev synth", () => {
  it("writes a deterministic random-weight model that runs", () => {
    const a = join(scratch, "a.gguf");
    const b = join(scratch, "b.gguf");
    for (const out of [a, b]) {
      const { code, stderr } = tsllm(["dev", "synth", "--preset", "tiny", "--type", "Q8_0", "--vocab-from", STORIES, "-o", out, "--seed", "3"]);
      assert.equal(code, 0, stderr);
    }
    assert.ok(readFileSync(a).equals(readFileSync(b)));
    const file = GgufFile.open(a);
    assert.equal(file.tensors.length, 2 * 9 + 3);
    file.close();
    const { code, stdout } = tsllm(["run", a, "Once", "-n", "8", "--temp", "0", "--json"]);
    assert.equal(code, 0);
    assert.equal((JSON.parse(stdout) as { tokens: number[] }).tokens.length, 8);
  });
});

describe("token tools", () => {
  it("count gives the number of tokens llama.cpp makes of a file or of stdin", async () => {
    const text = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
    const theirs = await llamaCppTokenize(STORIES, text); // without BOS; text like <s> stays text
    assert.equal(tsllm(["count", STORIES, join(REPO_ROOT, "README.md")]).stdout, `${theirs.length + 1}\n`);
    assert.equal(tsllm(["count", STORIES, "-", "--no-bos"], text).stdout, `${theirs.length}\n`);
  });

  it("tokenize --compare splits one text under several tokenizers, as llama.cpp does", async () => {
    const models = ["ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-phi-3.gguf"].map((f) => join(VOCAB_DIR, f));
    const text = "我愛人工智慧";
    const { code, stdout } = tsllm(["tokenize", "--compare", ...models, text]);
    assert.equal(code, 0);
    const lines = stdout.trimEnd().split("\n");
    assert.equal(lines[0], '"我愛人工智慧": 6 characters');
    assert.match(lines[2], /^model\s+tokens\s+chars\/token\s+pieces$/);
    for (const [i, model] of models.entries()) {
      const count = (await llamaCppTokenize(model, text, false)).length;
      const [name, tokens, perToken] = lines[3 + i].split(/\s{2,}/);
      assert.equal(name, model.split("/").pop()?.replace(".gguf", ""));
      assert.equal(Number(tokens), count);
      assert.equal(perToken, (6 / count).toFixed(2));
    }
    assert.match(lines[4], /\|人\|<E5 B7>\|<A5>\|/, "GPT-2's byte-level pieces that split a character are shown as bytes");
  });
});
