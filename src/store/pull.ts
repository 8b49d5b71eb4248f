import { rmSync } from "node:fs";
import { GgufFile } from "../gguf/reader.js";
import { CATALOG } from "./catalog.js";
import { DownloadedBlob, downloadToBlob, DownloadProgress } from "./download.js";
import { StoreError } from "./errors.js";
import { StoreLayout } from "./home.js";
import { Hub, HubFile, listRepoFiles } from "./hub.js";
import { Manifest, saveManifest } from "./manifest.js";
import { summarizeModel } from "./model-summary.js";
import { DEFAULT_QUANT_PREFERENCE, fileStem, quantTagOf } from "./quant-tag.js";
import { ModelReference, parseReference } from "./reference.js";

export type HubReference = Extract<ModelReference, { kind: "hub-file" | "hub-repo" }>;

/** A name from the catalog as its hub reference; other names are not pullable. */
export function hubReferenceOf(reference: ModelReference): HubReference | undefined {
  if (reference.kind !== "name") return reference;
  const alias = CATALOG[reference.name];
  return alias ? (parseReference(alias) as HubReference) : undefined;
}

const SPLIT_PART = /-(\d{5})-of-(\d{5})\.gguf$/i;

/** A model's files in order: the file itself, or every part of a split model. */
function partsOf(first: HubFile, files: HubFile[]): HubFile[] {
  const match = SPLIT_PART.exec(first.path);
  if (!match) return [first];
  const prefix = first.path.slice(0, match.index);
  const count = Number(match[2]);
  const parts: HubFile[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `${prefix}-${String(i).padStart(5, "0")}-of-${match[2]}.gguf`;
    const part = files.find((f) => f.path === name);
    if (!part) throw new StoreError(`${first.path}: part ${name} is missing from the repository`);
    parts.push(part);
  }
  return parts;
}

/** Model files of a repo (projectors and later split parts left out), each with the quant its name announces. */
function modelFiles(files: HubFile[]): { file: HubFile; quant?: string }[] {
  return files
    .filter((f) => f.path.toLowerCase().endsWith(".gguf") && !/mmproj/i.test(f.path))
    .filter((f) => {
      const split = SPLIT_PART.exec(f.path);
      return !split || Number(split[1]) === 1;
    })
    .map((file) => ({ file, quant: quantTagOf(file.path) }))
    .sort((a, b) => a.file.path.localeCompare(b.file.path));
}

/** The files to fetch for a reference and the tag the model is stored under. */
export function pickFiles(reference: HubReference, files: HubFile[]): { tag: string; parts: HubFile[] } {
  if (reference.kind === "hub-file") {
    const file = files.find((f) => f.path === reference.file);
    if (!file) throw new StoreError(`${reference.repo}: no file ${reference.file} in the repository (404)`);
    const parts = partsOf(file, files);
    return { tag: quantTagOf(file.path) ?? fileStem(file.path).replace(/[^A-Za-z0-9._-]/g, "_"), parts };
  }
  const candidates = modelFiles(files);
  if (candidates.length === 0) throw new StoreError(`${reference.repo}: the repository holds no GGUF model`);
  const wanted = reference.quant ? [reference.quant] : DEFAULT_QUANT_PREFERENCE;
  for (const quant of wanted) {
    const found = candidates.find((c) => c.quant === quant);
    if (found) return { tag: quant, parts: partsOf(found.file, files) };
  }
  if (!reference.quant && candidates.length === 1) {
    const only = candidates[0];
    return { tag: only.quant ?? fileStem(only.file.path).replace(/[^A-Za-z0-9._-]/g, "_"), parts: partsOf(only.file, files) };
  }
  const available = [...new Set(candidates.map((c) => c.quant ?? fileStem(c.file.path)))].join(", ");
  throw new StoreError(
    reference.quant
      ? `${reference.repo}: no ${reference.quant} file; available: ${available}`
      : `${reference.repo}: several models and no default quant among them; pick one of: ${available}`,
  );
}

export interface PullOptions {
  hub: Hub;
  layout: StoreLayout;
  onProgress?: (progress: DownloadProgress & { part: number; parts: number }) => void;
}

/** Downloads a model into the store and writes its manifest; returns the manifest. */
export async function pullModel(reference: HubReference, options: PullOptions): Promise<Manifest> {
  const { hub, layout } = options;
  const files = await listRepoFiles(hub, reference.repo, reference.revision);
  const { tag, parts } = pickFiles(reference, files);
  const blobs: DownloadedBlob[] = [];
  for (const [index, part] of parts.entries()) {
    blobs.push(
      await downloadToBlob(hub, layout, reference.repo, reference.revision, part, (progress) =>
        options.onProgress?.({ ...progress, part: index + 1, parts: parts.length }),
      ),
    );
  }
  let summary;
  try {
    const file = GgufFile.openParts(blobs.map((b) => b.path));
    try {
      summary = summarizeModel(file);
    } finally {
      file.close();
    }
  } catch (error) {
    for (const blob of blobs) rmSync(blob.path, { force: true });
    throw new StoreError(`${reference.repo}/${parts[0].path}: downloaded, but not a usable GGUF model (${(error as Error).message})`);
  }
  const manifest: Manifest = {
    schema: 1,
    repo: reference.repo,
    tag,
    endpoint: hub.endpoint,
    revision: reference.revision,
    files: parts.map((part, i) => ({ path: part.path, sha256: blobs[i].sha256, size: blobs[i].size })),
    ...summary,
    pulledAt: new Date().toISOString(),
  };
  saveManifest(layout, manifest);
  return manifest;
}
