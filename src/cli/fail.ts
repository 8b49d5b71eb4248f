import { GgufError } from "../gguf/errors.js";
import { ModelError } from "../models/model.js";
import { QuantizeError } from "../quantize/errors.js";
import { StoreError } from "../store/errors.js";

/** A mistake in how the command was called: one line on stderr, exit code 1, no stack trace. */
export class UsageError extends Error {}

/** Errors the user can act on print one line; anything else is a bug and keeps its stack. */
export function describeFailure(error: unknown): { message: string; expected: boolean } {
  if (error instanceof GgufError) return { message: `invalid model file: ${error.message}`, expected: true };
  if (error instanceof ModelError || error instanceof StoreError || error instanceof QuantizeError || error instanceof UsageError || error instanceof RangeError) {
    return { message: error.message, expected: true };
  }
  if (error instanceof Error && "code" in error && typeof error.code === "string" && error.code.startsWith("ERR_PARSE_ARGS")) {
    return { message: error.message, expected: true };
  }
  return { message: error instanceof Error ? (error.stack ?? error.message) : String(error), expected: false };
}
