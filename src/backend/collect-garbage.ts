import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let fullCollection: (() => void) | undefined;

/**
 * A full collection now. Large array buffers are freed only when the collector finds them dead, and a
 * synchronous run of forward passes gives it no reason to look, so a prompt batch's tens of megabytes
 * would stay resident until some later allocation. V8 exposes `gc` to contexts created after the flag.
 */
export function collectGarbage(): void {
  if (!fullCollection) {
    setFlagsFromString("--expose-gc");
    fullCollection = runInNewContext("gc") as () => void;
  }
  fullCollection();
}
