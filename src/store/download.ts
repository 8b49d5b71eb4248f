import { createHash, Hash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { StoreError } from "./errors.js";
import { blobPath, StoreLayout } from "./home.js";
import { describeHttpFailure, describeNetworkFailure, Hub, HubFile, hubFetch, resolveUrl } from "./hub.js";

export interface DownloadProgress {
  file: string;
  /** Bytes on disk so far, a resumed part included. */
  received: number;
  total: number;
  /** Bytes that were already on disk when this transfer started. */
  resumedFrom: number;
}

export interface DownloadedBlob {
  sha256: string;
  size: number;
  path: string;
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

function partialPath(layout: StoreLayout, repo: string, file: HubFile): string {
  const key = file.sha256 ? `sha256-${file.sha256}` : `${repo}/${file.path}`.replace(/[^A-Za-z0-9._-]/g, "_");
  return join(layout.partial, `${key}.partial`);
}

function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/** Where a 206 answer starts (`Content-Range: bytes START-END/TOTAL`). */
function rangeStart(response: Response): number | undefined {
  const match = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
  return match ? Number(match[1]) : undefined;
}

/**
 * Downloads one hub file into the store's blobs. A transfer that breaks leaves its partial file for the
 * next pull to resume with a Range request; the blob appears (by rename) only once its size and sha256
 * are right. A checksum mismatch or a full disk deletes the partial file.
 */
export async function downloadToBlob(
  hub: Hub,
  layout: StoreLayout,
  repo: string,
  revision: string,
  file: HubFile,
  onProgress: (progress: DownloadProgress) => void,
): Promise<DownloadedBlob> {
  if (file.sha256 && existsSync(blobPath(layout, file.sha256)) && statSync(blobPath(layout, file.sha256)).size === file.size) {
    onProgress({ file: file.path, received: file.size, total: file.size, resumedFrom: file.size });
    return { sha256: file.sha256, size: file.size, path: blobPath(layout, file.sha256) };
  }
  mkdirSync(layout.partial, { recursive: true });
  mkdirSync(layout.blobs, { recursive: true });
  const partial = partialPath(layout, repo, file);
  let have = existsSync(partial) ? statSync(partial).size : 0;
  if (have > file.size) {
    rmSync(partial, { force: true });
    have = 0;
  }
  const url = resolveUrl(hub, repo, revision, file.path);
  const response = await hubFetch(hub, url, { headers: have > 0 ? { range: `bytes=${have}-` } : {} });
  if (response.status === 416 && have === file.size) {
    // everything was already here; only the checks remain
  } else if (!response.ok) {
    throw new StoreError(describeHttpFailure(response.status, `${repo}/${file.path}`));
  } else if (response.status !== 206 || rangeStart(response) !== have) {
    have = 0; // the server sent the whole file: start over
  }

  const hash = createHash("sha256");
  if (have > 0) await hashFile(partial, hash);
  let received = have;
  const resumedFrom = have;
  onProgress({ file: file.path, received, total: file.size, resumedFrom });
  const handle = await open(partial, have > 0 ? "a" : "w");
  try {
    if (response.body && response.status !== 416) {
      try {
        for await (const chunk of response.body) {
          if (received + chunk.length > file.size) throw new StoreError(`${file.path}: the hub sent more than the ${file.size} bytes it listed`);
          await handle.write(chunk);
          hash.update(chunk);
          received += chunk.length;
          onProgress({ file: file.path, received, total: file.size, resumedFrom });
        }
      } catch (error) {
        if (error instanceof StoreError || isDiskFull(error)) throw error;
        throw new StoreError(
          `${file.path}: ${describeNetworkFailure(error, hub)} after ${received} of ${file.size} bytes; run the same pull again to resume`,
        );
      }
    }
  } catch (error) {
    await handle.close();
    if (isDiskFull(error)) {
      rmSync(partial, { force: true });
      throw new StoreError(`${file.path}: disk full while writing to ${layout.root}; the partial download was deleted`);
    }
    if (error instanceof StoreError && error.message.includes("more than")) rmSync(partial, { force: true });
    throw error;
  }
  await handle.close();
  if (received !== file.size) {
    throw new StoreError(`${file.path}: the transfer ended after ${received} of ${file.size} bytes; run the same pull again to resume`);
  }
  const sha256 = hash.digest("hex");
  if (file.sha256 && sha256 !== file.sha256) {
    rmSync(partial, { force: true });
    throw new StoreError(`${file.path}: checksum mismatch (expected sha256 ${file.sha256}, got ${sha256}); the download was deleted`);
  }
  const path = blobPath(layout, sha256);
  renameSync(partial, path);
  return { sha256, size: received, path };
}
