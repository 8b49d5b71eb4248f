/** A request the server refuses: the HTTP status and what to tell the client. */
export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 413 | 429 | 500 | 503,
    message: string,
    readonly code: string,
    readonly param?: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** OpenAI's error shape: `{error: {message, type, param, code}}`. */
export function openAiError(error: ApiError): { error: { message: string; type: string; param: string | null; code: string } } {
  const type = error.status === 401 ? "authentication_error" : error.status >= 500 ? "server_error" : error.status === 404 ? "not_found_error" : "invalid_request_error";
  return { error: { message: error.message, type, param: error.param ?? null, code: error.code } };
}
