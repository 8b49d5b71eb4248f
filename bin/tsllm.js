#!/usr/bin/env node
import { spawn } from "node:child_process";

// glibc's malloc raises its mmap threshold as large blocks are freed, after which a prompt batch's large
// activation buffers come from its heap and stay resident once freed. A fixed threshold hands them back
// to the system; glibc reads it only at start-up, hence one re-launch with it set. The re-launch also caps
// V8's young generation at 2 MB a semi-space: loading a vocabulary's metadata grows it to 16 MB, which V8
// then keeps (about 30 MB resident for Llama-3's tokenizer), while the work after that is WebAssembly's.
if (process.platform === "linux" && process.env.MALLOC_MMAP_THRESHOLD_ === undefined) {
  const youngGeneration = process.execArgv.some((flag) => flag.startsWith("--max-semi-space-size")) ? [] : ["--max-semi-space-size=2"];
  const child = spawn(process.execPath, [...youngGeneration, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: String(128 * 1024) },
  });
  // signals sent to this process (a server's SIGTERM) are the child's to handle
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("error", (error) => {
    throw error;
  });
  child.on("exit", (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
} else {
  await run();
}

async function run() {
  // a reader that stops early (tsllm show … | head) ends the output, not with a stack trace
  process.stdout.on("error", (error) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
  const { main } = await import("../dist/src/cli/main.js");
  process.exitCode = await main(process.argv.slice(2));
}
