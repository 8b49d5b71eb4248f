import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CLI, MODELS, REPO_ROOT, ZOO } from "./helpers/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "tsllm-chat-"));
const socket = `tsllm-test-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
after(() => {
  try {
    tmux("kill-server");
  } catch {
    // already gone
  }
  rmSync(scratch, { recursive: true, force: true });
});

const expected = JSON.parse(readFileSync(join(ZOO, "expected", "stories260K.json"), "utf8")) as { cases: { content: string }[] };
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The whole pane, history included, with wrapped lines joined as the program wrote them. */
function screen(): string {
  return tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "chat");
}

let seen = 0;
/** Waits until the text the program printed since the last wait matches; returns that text. */
async function waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = screen();
    const fresh = text.slice(seen);
    const match = pattern.exec(fresh);
    if (match) {
      seen += match.index + match[0].length;
      return fresh.slice(0, match.index + match[0].length);
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${pattern}; the screen shows:\n${fresh}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function type(text: string): void {
  tmux("send-keys", "-t", "chat", "-l", text);
  tmux("send-keys", "-t", "chat", "Enter");
}

describe("the interactive chat, driven in a real terminal (tmux)", () => {
  it("streams answers, obeys /commands, stops on Ctrl-C, truncates a full context visibly, and leaves on /bye", async () => {
    const command = [
      `cd ${quote(REPO_ROOT)} &&`,
      `TSLLM_HOME=${quote(scratch)} TSLLM_MODELS=${quote(MODELS)}`,
      `${quote(process.execPath)} ${quote(CLI)} run stories260K --temp 0 -n 64 --ignore-eos --verbose;`,
      `echo "EXITED $?"; sleep 60`,
    ].join(" ");
    tmux("new-session", "-d", "-s", "chat", "-x", "200", "-y", "50", command);
    await waitFor(/no chat template: each message continues the text so far\)\n>>> $/m);

    type("Once upon a time");
    const answer = await waitFor(/generation: 64 tokens, [\d.]+ tok\/s\n>>> /);
    assert.ok(answer.includes(`Once upon a time\n${expected.cases[0].content}\n`), `llama.cpp's greedy story, streamed:\n${answer}`);
    assert.match(answer, /prompt: 5 tokens \(0 from cache\)/);

    type("/set parameter temperature 0.7");
    await waitFor(/Set parameter 'temperature' to '0\.7'\n>>> /);
    type("/show parameters");
    await waitFor(/temperature\s+0\.7\n[^]*num_predict\s+64\n\s+num_ctx\s+2048\n>>> /);
    type("/show info");
    await waitFor(/architecture\s+llama\n[^]*layers\s+5\n[^]*>>> /);

    // a second turn reuses the cached conversation; a message over several lines goes between """ marks
    type('"""Lily went');
    await waitFor(/\.\.\. $/m);
    type('to the park"""');
    const second = await waitFor(/generation: 64 tokens, [\d.]+ tok\/s\n>>> /);
    assert.match(second, /prompt: \d+ tokens \(\d+ from cache\)/);
    assert.ok(Number(/\((\d+) from cache\)/.exec(second)?.[1]) > 60, "the first turn's tokens came from the cache");

    type("/save story");
    await waitFor(/Saved conversation 'story' \(4 messages\)\n>>> /);
    const saved = JSON.parse(readFileSync(join(scratch, "conversations", "story.json"), "utf8")) as { messages: { role: string; content: string }[] };
    assert.deepEqual(saved.messages.slice(0, 3), [
      { role: "user", content: "Once upon a time" },
      { role: "assistant", content: expected.cases[0].content },
      { role: "user", content: "Lily went\nto the park" },
    ]);
    type("/clear");
    await waitFor(/Cleared session context\n>>> /);
    type("/load story");
    await waitFor(/Loaded conversation 'story' \(4 messages\)\n>>> /);

    // Ctrl-C ends an answer, not the program
    type("/set parameter num_predict -1");
    await waitFor(/Set parameter 'num_predict' to '-1'\n>>> /);
    type("Lily");
    await waitFor(/Lily\n[^]{40}/); // some of the answer has streamed
    tmux("send-keys", "-t", "chat", "C-c");
    // (once the captured text before this point came out a character shorter and "stopped]" led the rest)
    await waitFor(/stopped\]\n>>> /);
    tmux("send-keys", "-t", "chat", "C-c");
    await waitFor(/Use Ctrl \+ d or \/bye to exit\.\n>>> /);

    // a context too small for the conversation drops the oldest turns, and says so
    type("/set parameter num_ctx 128");
    await waitFor(/Set parameter 'num_ctx' to '128'\n>>> /);
    type("/set parameter num_predict 16");
    await waitFor(/>>> /);
    type("The end");
    await waitFor(/\[context full: dropped the \d+ oldest messages to stay within 128 tokens\]\n[^]*generation: 16 tokens[^]*>>> /);

    type("/bye");
    await waitFor(/EXITED 0/);
    assert.ok(existsSync(join(scratch, "conversations", "story.json")));
  });
});
