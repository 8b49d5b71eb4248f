import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { StoreError } from "./errors.js";
import { blobPath, StoreLayout } from "./home.js";

const MANIFEST_SCHEMA = z.object({
  schema: z.literal(1),
  repo: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/),
  tag: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/),
  endpoint: z.string(),
  revision: z.string(),
  /** The parts in order, one for a whole model. */
  files: z.array(z.object({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() })).min(1),
  architecture: z.string(),
  parameters: z.number().nonnegative(),
  quant: z.string(),
  contextLength: z.number().optional(),
  pulledAt: z.string(),
});

export type Manifest = z.infer<typeof MANIFEST_SCHEMA>;

export interface StoredModel {
  name: string;
  manifest: Manifest;
  manifestPath: string;
  modified: Date;
}

export function modelName(manifest: Pick<Manifest, "repo" | "tag">): string {
  return `${manifest.repo}:${manifest.tag}`;
}

function manifestPath(layout: StoreLayout, repo: string, tag: string): string {
  return join(layout.manifests, ...repo.split("/"), `${tag}.json`);
}

export function modelSize(manifest: Manifest): number {
  return manifest.files.reduce((sum, f) => sum + f.size, 0);
}

export function blobPaths(layout: StoreLayout, manifest: Manifest): string[] {
  return manifest.files.map((f) => blobPath(layout, f.sha256));
}

function readStoredModel(path: string): StoredModel {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new StoreError(`${path}: unreadable manifest (${(error as Error).message})`);
  }
  const result = MANIFEST_SCHEMA.safeParse(parsed);
  if (!result.success) throw new StoreError(`${path}: invalid manifest (${result.error.issues[0].path.join(".")}: ${result.error.issues[0].message})`);
  return { name: modelName(result.data), manifest: result.data, manifestPath: path, modified: statSync(path).mtime };
}

function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

/** Every model in the store, by name. A damaged manifest is reported through `onInvalid`, not thrown. */
export function listStoredModels(layout: StoreLayout, onInvalid?: (message: string) => void): StoredModel[] {
  const models: StoredModel[] = [];
  for (const owner of subdirectories(layout.manifests)) {
    for (const repo of subdirectories(join(layout.manifests, owner))) {
      const dir = join(layout.manifests, owner, repo);
      for (const entry of readdirSync(dir)) {
        if (!entry.endsWith(".json")) continue;
        try {
          models.push(readStoredModel(join(dir, entry)));
        } catch (error) {
          onInvalid?.((error as Error).message);
        }
      }
    }
  }
  return models.sort((a, b) => a.name.localeCompare(b.name));
}

/** Writes through a temporary name and a rename, so a reader never sees half a manifest. */
export function saveManifest(layout: StoreLayout, manifest: Manifest): string {
  const path = manifestPath(layout, manifest.repo, manifest.tag);
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(MANIFEST_SCHEMA.parse(manifest), null, 2)}\n`);
  renameSync(temporary, path);
  return path;
}

/** Deletes a model's manifest, then every blob no remaining manifest uses; returns the bytes freed. */
export function removeModel(layout: StoreLayout, model: StoredModel): number {
  rmSync(model.manifestPath);
  return collectGarbage(layout);
}

/** Deletes unused blobs; keeps them all while any manifest is unreadable, since its blobs cannot be told. */
export function collectGarbage(layout: StoreLayout): number {
  let damaged = false;
  const models = listStoredModels(layout, () => (damaged = true));
  if (damaged) return 0;
  const used = new Set(models.flatMap((m) => m.manifest.files.map((f) => `sha256-${f.sha256}`)));
  let freed = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync(layout.blobs);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (used.has(entry)) continue;
    const path = join(layout.blobs, entry);
    freed += statSync(path).size;
    rmSync(path, { force: true });
  }
  return freed;
}
