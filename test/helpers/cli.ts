import { spawn } from "node:child_process";
import { CLI, REPO_ROOT } from "./paths.js";

/**
 * The CLI as a user runs it, asynchronously so that a test hub in this process keeps answering.
 * TSLLM_MODELS is cleared unless `env` sets it, so that names resolve only where the test says.
 */
export function tsllmAsync(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, TSLLM_MODELS: "", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
