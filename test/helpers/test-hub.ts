import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, IncomingMessage, Server, ServerResponse } from "node:http";
import { AddressInfo } from "node:net";

export interface HubFileSpec {
  /** Where the file sits in the repository. */
  path: string;
  /** The real file to serve. */
  source: string;
  /** The sha256 the listing claims (defaults to the file's real one); a wrong one imitates a corrupted transfer. */
  listedSha256?: string;
}

export interface HubRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export interface TestHubOptions {
  repos: Record<string, HubFileSpec[]>;
  /** Require `Authorization: Bearer TOKEN` on every request (a gated repository). */
  token?: string;
  /** Entries per page of the tree listing, to exercise the Link header. */
  pageSize?: number;
}

/**
 * A local imitation of the Hugging Face hub: the tree API (paged with Link headers), `resolve` URLs that
 * redirect to a CDN path as the real hub does for LFS files, and a CDN that honours Range. A file can be
 * set to drop the connection once, part-way, to imitate a broken download.
 */
export class TestHub {
  readonly requests: HubRequest[] = [];
  /** Paths whose next CDN transfer breaks after this many bytes. */
  readonly dropOnce = new Map<string, number>();
  private server?: Server;
  private readonly blobs = new Map<string, Buffer>();
  private readonly files = new Map<string, { spec: HubFileSpec; sha256: string; bytes: Buffer }[]>();

  constructor(private readonly options: TestHubOptions) {
    for (const [repo, specs] of Object.entries(options.repos)) {
      this.files.set(
        repo,
        specs.map((spec) => {
          const bytes = readFileSync(spec.source);
          const sha256 = createHash("sha256").update(bytes).digest("hex");
          this.blobs.set(sha256, bytes);
          return { spec, sha256, bytes };
        }),
      );
    }
  }

  get endpoint(): string {
    const { port } = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://hub");
    this.requests.push({ method: req.method ?? "", url: url.pathname + url.search, range: req.headers.range, authorization: req.headers.authorization });
    if (this.options.token && req.headers.authorization !== `Bearer ${this.options.token}`) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "Invalid credentials" }));
      return;
    }
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    if (tree) return this.listTree(decodeURIComponent(tree[1]), url, res);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) return this.resolve(decodeURIComponent(resolve[1]), decodeURIComponent(resolve[3]), res);
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) return this.serveBlob(cdn[1], req, res);
    res.writeHead(404).end("Not Found");
  }

  private listTree(repo: string, url: URL, res: ServerResponse): void {
    const files = this.files.get(repo);
    if (!files) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "Repository not found" }));
      return;
    }
    const entries = files.map(({ spec, sha256, bytes }) => ({
      type: "file",
      oid: "0".repeat(40),
      size: bytes.length,
      path: spec.path,
      lfs: { oid: spec.listedSha256 ?? sha256, size: bytes.length, pointerSize: 134 },
    }));
    entries.push({ type: "file", oid: "1".repeat(40), size: 12, path: "README.md", lfs: undefined as never });
    const pageSize = this.options.pageSize ?? entries.length;
    const start = Number(url.searchParams.get("cursor") ?? "0");
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (start + pageSize < entries.length) {
      headers.link = `<${this.endpoint}${url.pathname}?recursive=true&cursor=${start + pageSize}>; rel="next"`;
    }
    res.writeHead(200, headers).end(JSON.stringify(entries.slice(start, start + pageSize)));
  }

  private resolve(repo: string, path: string, res: ServerResponse): void {
    const file = this.files.get(repo)?.find((f) => f.spec.path === path);
    if (!file) {
      res.writeHead(404, { "x-error-code": "EntryNotFound" }).end("Entry not found");
      return;
    }
    res
      .writeHead(302, {
        location: `/cdn/${file.sha256}?path=${encodeURIComponent(path)}`,
        "x-repo-commit": "a".repeat(40),
        "x-linked-etag": `"${file.sha256}"`,
        "x-linked-size": String(file.bytes.length),
      })
      .end();
  }

  private serveBlob(sha256: string, req: IncomingMessage, res: ServerResponse): void {
    const bytes = this.blobs.get(sha256);
    if (!bytes) {
      res.writeHead(404).end();
      return;
    }
    const path = new URL(req.url ?? "/", "http://hub").searchParams.get("path") ?? "";
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range) {
      start = Number(range[1]);
      if (start >= bytes.length) {
        res.writeHead(416, { "content-range": `bytes */${bytes.length}` }).end();
        return;
      }
      res.writeHead(206, { "content-range": `bytes ${start}-${bytes.length - 1}/${bytes.length}`, "content-length": String(bytes.length - start), "accept-ranges": "bytes" });
    } else {
      res.writeHead(200, { "content-length": String(bytes.length), "accept-ranges": "bytes" });
    }
    const dropAt = this.dropOnce.get(path);
    if (dropAt !== undefined && dropAt > start) {
      this.dropOnce.delete(path);
      res.write(bytes.subarray(start, dropAt), () => setTimeout(() => res.destroy(), 50));
      return;
    }
    res.end(bytes.subarray(start));
  }
}
