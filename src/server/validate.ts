import { z } from "zod";
import { ApiError } from "./errors.js";

/** A request body checked against its schema; the first problem becomes a 400 naming the field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined) throw new ApiError(400, "the request body is not valid JSON", "invalid_json");
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.join(".");
  throw new ApiError(400, `${field ? `${field}: ` : ""}${issue.message}`, "invalid_request", field || undefined);
}

/**
 * A `suffix` to fill in the middle (OpenAI's completions, Ollama's generate): refused rather than
 * ignored, since an answer that silently leaves it out is not the one asked for. Empty asks for nothing.
 */
export const NO_SUFFIX = z.string().max(0, "fill-in-the-middle is not supported").optional().nullable();
