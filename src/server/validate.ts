import { z } from "zod";
import { ApiError } from "./errors.js";

/** A request body checked against its schema; the first problem becomes a 400 naming the field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined) throw new ApiError(400, "the request body is not valid JSON", "invalid_json");
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const { path, message } = specific(result.error.issues[0]);
  const field = path.join(".");
  throw new ApiError(400, `${field ? `${field}: ` : ""}${message}`, "invalid_request", field || undefined);
}

/**
 * A union's problem as the alternative that came nearest says it (`stop: Too big: expected array to have
 * <=4 items`, not `stop: Invalid input`): the first whose type matched, then broke a rule or failed
 * inside; where no type matched, the types it could have been.
 */
function specific(issue: z.core.$ZodIssue): { path: PropertyKey[]; message: string } {
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return issue;
  const firsts = issue.errors.map((branch) => branch[0]).filter((first) => first !== undefined);
  const nearest = firsts.find((first) => first.code !== "invalid_type" || first.path.length > 0);
  if (nearest) {
    const inner = specific(nearest);
    return { path: [...issue.path, ...inner.path], message: inner.message };
  }
  const expected = firsts.flatMap((first) => (first.code === "invalid_type" ? [first.expected] : []));
  return { path: issue.path, message: expected.length > 0 ? `Invalid input: expected ${[...new Set(expected)].join(" or ")}` : issue.message };
}

/**
 * A `suffix` to fill in the middle (OpenAI's completions, Ollama's generate): refused rather than
 * ignored, since an answer that silently leaves it out is not the one asked for. Empty asks for nothing.
 */
export const NO_SUFFIX = z.string().max(0, "fill-in-the-middle is not supported").optional().nullable();
