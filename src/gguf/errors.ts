/** Every way a GGUF file can be refused. `where` names the key or tensor at fault. */
export type GgufErrorCode =
  | "not-gguf"
  | "unsupported-version"
  | "truncated"
  | "limit"
  | "bad-type"
  | "bad-value"
  | "bad-tensor"
  | "io";

export class GgufError extends Error {
  constructor(
    readonly code: GgufErrorCode,
    message: string,
    readonly where?: string,
  ) {
    super(where ? `${where}: ${message}` : message);
    this.name = "GgufError";
  }
}
