import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GgufFile, GgufValueType, writeGguf } from "../src/gguf/index.js";
import { MODELS, STORIES, ZOO } from "./helpers/paths.js";
import { tsllmAsync } from "./helpers/cli.js";
import { TestHub } from "./helpers/test-hub.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-store-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const expected = JSON.parse(readFileSync(join(ZOO, "expected", "stories260K.json"), "utf8")) as { cases: { content: string }[] };
const sha256Of = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");

const tsllm = tsllmAsync;

/** stories260K split in two parts the way llama.cpp's gguf-split names and marks them. */
function writeSplitStories(dir: string): string[] {
  const whole = GgufFile.open(STORIES);
  const half = Math.ceil(whole.tensors.length / 2);
  const groups = [whole.tensors.slice(0, half), whole.tensors.slice(half)];
  const paths = groups.map((_, i) => join(dir, `stories-split-${String(i + 1).padStart(5, "0")}-of-00002.gguf`));
  groups.forEach((tensors, i) => {
    const metadata = i === 0 ? new Map(whole.metadata) : new Map();
    metadata.set("split.no", { type: GgufValueType.UINT16, value: i });
    metadata.set("split.count", { type: GgufValueType.UINT16, value: 2 });
    metadata.set("split.tensors.count", { type: GgufValueType.INT32, value: whole.tensors.length });
    writeGguf(paths[i], { metadata, tensors: tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: () => whole.readTensorData(t) })) });
  });
  whole.close();
  return paths;
}

describe("the model store and pull, against a local imitation of the hub", () => {
  const splitDir = join(scratch, "split");
  mkdirSync(splitDir);
  const splitParts = writeSplitStories(splitDir);
  const hub = new TestHub({
    pageSize: 2,
    repos: {
      "ggml-org/models": [{ path: "tinyllamas/stories260K.gguf", source: STORIES }],
      "zoo/tiny-GGUF": [
        { path: "tiny-Q4_0.gguf", source: join(ZOO, "zoo-Q4_0-pure.gguf") },
        { path: "tiny-Q8_0.gguf", source: join(ZOO, "zoo-Q8_0-pure.gguf") },
        { path: "mmproj-tiny-F16.gguf", source: join(ZOO, "zoo-F16-pure.gguf") },
      ],
      "bad/checksum": [{ path: "model-Q8_0.gguf", source: STORIES, listedSha256: "f".repeat(64) }],
      "split/stories-GGUF": splitParts.map((source, i) => ({ path: `Q8_0/stories-Q8_0-${String(i + 1).padStart(5, "0")}-of-00002.gguf`, source })),
    },
  });
  const gated = new TestHub({ token: "hf_secret", repos: { "gated/stories": [{ path: "stories260K.gguf", source: STORIES }] } });
  before(async () => {
    await hub.start();
    await gated.start();
  });
  after(async () => {
    await hub.stop();
    await gated.stop();
  });
  const home = (name: string): Record<string, string> => ({ TSLLM_HOME: join(scratch, name), HF_ENDPOINT: hub.endpoint });

  it("a new user's path: pull by catalog name, run, list, show, rm", async () => {
    const env = home("first");
    const pulled = await tsllm(["pull", "stories260K"], env);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stderr, /pulling tinyllamas\/stories260K\.gguf: 100% \(1\.2 MB of 1\.2 MB/);
    assert.match(pulled.stderr, /verified sha256 and saved ggml-org\/models:stories260K \(1\.2 MB\)/);
    const blob = join(env.TSLLM_HOME, "blobs", `sha256-${sha256Of(STORIES)}`);
    assert.ok(existsSync(blob));

    const run = await tsllm(["run", "stories260K", "Once upon a time", "-n", "64", "--temp", "0"], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${expected.cases[0].content}\n`);

    const list = await tsllm(["list"], env);
    assert.equal(list.code, 0);
    const lines = list.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^NAME\s+SIZE\s+QUANT\s+PARAMETERS\s+MODIFIED$/);
    assert.match(lines[1], /^ggml-org\/models:stories260K\s+1\.2 MB\s+F32\s+292\.\dK\s+(just now|\d+ minutes? ago)$/);

    const show = await tsllm(["show", "ggml-org/models:stories260K", "--verbose"], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^architecture\s+llama$/m);
    assert.match(show.stdout, /^context length\s+2048$/m);
    assert.match(show.stdout, /^chat template: none/m);
    assert.match(show.stdout, /^ {2}tokenizer\.ggml\.tokens = \["<unk>", "<s>", "<\/s>", .*\(512 items\)$/m);

    const rm = await tsllm(["rm", "stories260K"], env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /deleted 'ggml-org\/models:stories260K' \(1\.2 MB freed\)/);
    assert.ok(!existsSync(blob));
    assert.equal((await tsllm(["list"], env)).stdout.trimEnd().split("\n").length, 1);
  });

  it("OWNER/REPO:QUANT picks that quant's file (and Q4_0 before Q8_0 by default); the listing's pages are followed", async () => {
    const env = home("quant");
    const byQuant = await tsllm(["pull", "zoo/tiny-GGUF:q8_0"], env);
    assert.equal(byQuant.code, 0, byQuant.stderr);
    assert.match(byQuant.stderr, /saved zoo\/tiny-GGUF:Q8_0/);
    const byDefault = await tsllm(["pull", "zoo/tiny-GGUF"], env);
    assert.match(byDefault.stderr, /saved zoo\/tiny-GGUF:Q4_0/);
    assert.ok(hub.requests.some((r) => r.url.includes("cursor=2")), "the second page of the listing was fetched");
    const missing = await tsllm(["pull", "zoo/tiny-GGUF:Q5_K_M"], env);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "tsllm: zoo/tiny-GGUF: no Q5_K_M file; available: Q4_0, Q8_0\n");
    const ambiguous = await tsllm(["show", "tiny-GGUF"], env);
    assert.match(ambiguous.stdout, /^quantization\s+Q4_0$/m, "the preferred quant answers to the bare repo name");
  });

  it("a dropped connection leaves a partial file that the next pull resumes with a Range request", async () => {
    const env = home("resume");
    const path = "tinyllamas/stories260K.gguf";
    hub.dropOnce.set(path, 400_000);
    const broken = await tsllm(["pull", `hf:ggml-org/models/${path}`], env);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /tsllm: tinyllamas\/stories260K\.gguf: cannot reach .* after 400000 of 1185376 bytes; run the same pull again to resume\n$/);
    assert.deepEqual(readdirSync(join(env.TSLLM_HOME, "partial")).length, 1);
    assert.ok(!existsSync(join(env.TSLLM_HOME, "manifests")), "no model is visible");

    const before = hub.requests.length;
    const resumed = await tsllm(["pull", `hf:ggml-org/models/${path}`], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming tinyllamas\/stories260K\.gguf at 400\.0 KB/);
    const ranges = hub.requests.slice(before).filter((r) => r.url.startsWith("/cdn/")).map((r) => r.range);
    assert.deepEqual(ranges, ["bytes=400000-"]);
    assert.ok(existsSync(join(env.TSLLM_HOME, "blobs", `sha256-${sha256Of(STORIES)}`)));
    assert.deepEqual(readdirSync(join(env.TSLLM_HOME, "partial")), []);
  });

  it("a checksum mismatch is refused and nothing is left behind", async () => {
    const env = home("checksum");
    const result = await tsllm(["pull", "bad/checksum"], env);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^tsllm: model-Q8_0\.gguf: checksum mismatch \(expected sha256 f{64}, got [0-9a-f]{64}\); the download was deleted\n$/m);
    assert.deepEqual(readdirSync(join(env.TSLLM_HOME, "partial")), []);
    assert.deepEqual(readdirSync(join(env.TSLLM_HOME, "blobs")), []);
    assert.ok(!existsSync(join(env.TSLLM_HOME, "manifests")));
  });

  it("404s name what is missing; 401 asks for HF_TOKEN, which is then sent", async () => {
    const env = home("errors");
    const noRepo = await tsllm(["pull", "nobody/nothing:Q4_0"], env);
    assert.equal(noRepo.code, 1);
    assert.equal(noRepo.stderr, "tsllm: repository nobody/nothing (revision main): not found (404)\n");
    const noFile = await tsllm(["pull", "hf:ggml-org/models/tinyllamas/missing.gguf"], env);
    assert.equal(noFile.stderr, "tsllm: ggml-org/models: no file tinyllamas/missing.gguf in the repository (404)\n");
    const gatedEnv = { TSLLM_HOME: join(scratch, "gated"), HF_ENDPOINT: gated.endpoint };
    const refused = await tsllm(["pull", "gated/stories"], gatedEnv);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /gated\/stories: the hub asks for credentials \(401\).*set HF_TOKEN/);
    const allowed = await tsllm(["pull", "gated/stories"], { ...gatedEnv, HF_TOKEN: "hf_secret" });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.ok(gated.requests.filter((r) => r.url.startsWith("/cdn/")).every((r) => r.authorization === "Bearer hf_secret"));
  });

  it("a full disk deletes the partial download and says so", async () => {
    const env = home("full");
    mkdirSync(join(env.TSLLM_HOME, "partial"), { recursive: true });
    // the partial file is a link to /dev/full, where every write fails with ENOSPC
    symlinkSync("/dev/full", join(env.TSLLM_HOME, "partial", `sha256-${sha256Of(STORIES)}.partial`));
    const result = await tsllm(["pull", "stories260K"], env);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /tsllm: tinyllamas\/stories260K\.gguf: disk full while writing to .*; the partial download was deleted\n$/);
    assert.deepEqual(readdirSync(join(env.TSLLM_HOME, "partial")), []);
    assert.ok(!existsSync(join(env.TSLLM_HOME, "manifests")));
  });

  it("a split model is pulled part by part and runs as one; split files open by their first part", async () => {
    const env = home("split");
    const pulled = await tsllm(["pull", "split/stories-GGUF:Q8_0"], env);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stderr, /\(part 2\/2\): 100%/);
    const run = await tsllm(["run", "split/stories-GGUF", "Once upon a time", "-n", "64", "--temp", "0"], env);
    assert.equal(run.stdout, `${expected.cases[0].content}\n`, run.stderr);
    const local = await tsllm(["run", splitParts[0], "Once upon a time", "-n", "64", "--temp", "0"], env);
    assert.equal(local.stdout, `${expected.cases[0].content}\n`, local.stderr);
    const second = await tsllm(["show", splitParts[1]], env);
    assert.match(second.stderr, /is part 2 of 2; open the first part/);
  });

  it("TSLLM_MODELS folders resolve by file name; unknown names say where they were looked for", async () => {
    const env = { ...home("folders"), TSLLM_MODELS: `/nonexistent:${MODELS}` };
    const run = await tsllm(["run", "stories260K", "Once upon a time", "-n", "64", "--temp", "0"], env);
    assert.equal(run.stdout, `${expected.cases[0].content}\n`, run.stderr);
    const unknown = await tsllm(["run", "no-such-model", "hi"], env);
    assert.equal(unknown.stderr, "tsllm: model 'no-such-model' not found: not a file, not in the store or TSLLM_MODELS; see tsllm list, or give a path or OWNER/REPO[:QUANT]\n");
  });
});
