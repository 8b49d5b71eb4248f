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

/** "12G", "512M", "24GiB", "1.5T": bytes, binary units as memory sizes are sold. */
export function parseSize(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`${flag} expects a size such as 12G, got '${text}'`);
  const power = { "": 0, K: 1, M: 2, G: 3, T: 4 }[match[2].toUpperCase() as "" | "K" | "M" | "G" | "T"];
  return Number(match[1]) * 1024 ** power;
}

/** "360GB/s", "40 GB/s": bytes per second, decimal units as bandwidths are quoted. */
export function parseBandwidth(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)B?\/s$/i.exec(text.trim());
  if (!match) throw new UsageError(`${flag} expects a rate such as 360GB/s, got '${text}'`);
  const power = { "": 0, K: 1, M: 2, G: 3, T: 4 }[match[2].toUpperCase() as "" | "K" | "M" | "G" | "T"];
  return Number(match[1]) * 1000 ** power;
}
