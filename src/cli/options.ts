import { UsageError } from "./fail.js";

export function numberOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${name} expects a number, got '${value}'`);
  return n;
}

export function backendOption(value: string | undefined): "wasm" | "scalar" {
  if (value === undefined || value === "wasm" || value === "scalar") return value ?? "wasm";
  throw new UsageError(`--backend takes wasm or scalar, got '${value}'`);
}
