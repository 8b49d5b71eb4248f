import { StoreError } from "./errors.js";

/** How to reach a Hugging Face hub: `HF_ENDPOINT` and `HF_TOKEN`, as Hugging Face's own tools read them. */
export interface Hub {
  endpoint: string;
  token?: string;
}

export function hubFromEnvironment(): Hub {
  const endpoint = (process.env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, "");
  const token = process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined;
  return { endpoint, token };
}

export interface HubFile {
  path: string;
  size: number;
  /** The LFS object id, which is the file's sha256; absent for files kept in git itself. */
  sha256?: string;
}

export function hubHeaders(hub: Hub, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { "user-agent": "tsllm", ...extra };
  if (hub.token) headers.authorization = `Bearer ${hub.token}`;
  return headers;
}

function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

export function resolveUrl(hub: Hub, repo: string, revision: string, path: string): string {
  return `${hub.endpoint}/${encodePath(repo)}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`;
}

/** The user-facing reason for a refused hub request. */
export function describeHttpFailure(status: number, what: string): string {
  switch (status) {
    case 401:
      return `${what}: the hub asks for credentials (401); the repository may be private or gated: set HF_TOKEN`;
    case 403:
      return `${what}: access denied (403); a gated model needs its terms accepted on the hub, and HF_TOKEN set`;
    case 404:
      return `${what}: not found (404)`;
    case 429:
      return `${what}: the hub is rate-limiting requests (429); try again later`;
    default:
      return `${what}: the hub answered HTTP ${status}`;
  }
}

/** A network failure (refused, reset, unknown host, timeout) as one line. */
export function describeNetworkFailure(error: unknown, hub: Hub): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (error as Error).message;
  return `cannot reach ${hub.endpoint} (${detail})`;
}

export async function hubFetch(hub: Hub, url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, { ...init, headers: hubHeaders(hub, init.headers as Record<string, string> | undefined) });
  } catch (error) {
    throw new StoreError(describeNetworkFailure(error, hub));
  }
}

const TREE_ENTRY_LIMIT = 100_000;

interface TreeEntry {
  type?: unknown;
  path?: unknown;
  size?: unknown;
  lfs?: { oid?: unknown; size?: unknown } | null;
}

function nextPage(linkHeader: string | null): string | undefined {
  return linkHeader?.split(",").map((part) => /<([^>]+)>\s*;\s*rel="?next"?/.exec(part)?.[1]).find((url) => url !== undefined);
}

/** The repository's files at `revision` (the hub's tree API, following its pages). */
export async function listRepoFiles(hub: Hub, repo: string, revision: string): Promise<HubFile[]> {
  const files: HubFile[] = [];
  let url: string | undefined = `${hub.endpoint}/api/models/${encodePath(repo)}/tree/${encodeURIComponent(revision)}?recursive=true`;
  while (url) {
    const response = await hubFetch(hub, url);
    if (!response.ok) {
      throw new StoreError(describeHttpFailure(response.status, response.status === 404 ? `repository ${repo} (revision ${revision})` : repo));
    }
    const page: unknown = await response.json().catch(() => undefined);
    if (!Array.isArray(page)) throw new StoreError(`${repo}: the hub's file list is not a JSON array`);
    for (const entry of page as TreeEntry[]) {
      if (entry.type !== "file" || typeof entry.path !== "string" || typeof entry.size !== "number") continue;
      const oid = entry.lfs?.oid;
      files.push({ path: entry.path, size: entry.size, sha256: typeof oid === "string" && /^[0-9a-f]{64}$/.test(oid) ? oid : undefined });
      if (files.length > TREE_ENTRY_LIMIT) throw new StoreError(`${repo}: more than ${TREE_ENTRY_LIMIT} files`);
    }
    const next = nextPage(response.headers.get("link"));
    url = next ? new URL(next, hub.endpoint).toString() : undefined;
  }
  return files;
}
