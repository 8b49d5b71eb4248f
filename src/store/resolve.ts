import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "./errors.js";
import { hubFromEnvironment } from "./hub.js";
import { modelFolders, StoreLayout, storeLayout } from "./home.js";
import { blobPaths, listStoredModels, Manifest, modelName, StoredModel } from "./manifest.js";
import { hubReferenceOf, pullModel, PullOptions } from "./pull.js";
import { DEFAULT_QUANT_PREFERENCE, fileStem, quantTagOf } from "./quant-tag.js";
import { ModelReference, parseReference } from "./reference.js";

/** A model argument made concrete: the files to open, in part order. */
export interface ResolvedModel {
  /** How to show it: the store name, or the path it was given as. */
  name: string;
  paths: string[];
  from: "path" | "store" | "folder" | "pulled";
  manifest?: Manifest;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** Picks one model among several that answer to a name: the preferred quant, else the only one. */
function choose(models: StoredModel[], text: string): StoredModel | undefined {
  if (models.length <= 1) return models[0];
  for (const quant of DEFAULT_QUANT_PREFERENCE) {
    const preferred = models.find((m) => same(m.manifest.tag, quant));
    if (preferred) return preferred;
  }
  throw new StoreError(`'${text}' matches several models: ${models.map((m) => m.name).join(", ")}; name one with its tag`);
}

/** The stored model a reference names, if any. */
export function findStoredModel(layout: StoreLayout, reference: ModelReference, text: string): StoredModel | undefined {
  const models = listStoredModels(layout);
  if (reference.kind === "hub-file") {
    const file = reference.file;
    return models.find((m) => same(m.manifest.repo, reference.repo) && m.manifest.files[0].path === file);
  }
  if (reference.kind === "hub-repo") {
    const inRepo = models.filter((m) => same(m.manifest.repo, reference.repo));
    return choose(reference.quant ? inRepo.filter((m) => same(m.manifest.tag, reference.quant ?? "")) : inRepo, text);
  }
  const { name, tag } = reference;
  const matches = models.filter((m) => {
    const short = m.manifest.repo.split("/")[1];
    const stem = fileStem(m.manifest.files[0].path);
    if (tag !== undefined) return (same(short, name) || same(stem, name)) && same(m.manifest.tag, tag);
    return same(short, name) || same(m.manifest.tag, name) || same(stem, name);
  });
  return choose(matches, text);
}

/** A GGUF file in a `TSLLM_MODELS` folder that answers to NAME[:TAG]. */
export function findInFolders(name: string, tag: string | undefined): string | undefined {
  for (const folder of modelFolders()) {
    let entries: string[];
    try {
      entries = readdirSync(folder);
    } catch {
      continue;
    }
    const ggufs = entries.filter((e) => (e.toLowerCase().endsWith(".gguf") && !/-\d{5}-of-\d{5}\.gguf$/i.test(e)) || /-00001-of-\d{5}\.gguf$/i.test(e));
    const hit = ggufs.find((e) => {
      const stem = fileStem(e);
      if (tag === undefined) return same(stem, name);
      return same(stem, `${name}-${tag}`) || same(stem, `${name}.${tag}`) || (stem.toLowerCase().startsWith(name.toLowerCase()) && quantTagOf(e) === tag.toUpperCase());
    });
    if (hit && isFile(join(folder, hit))) return join(folder, hit);
  }
  return undefined;
}

export interface ResolveOptions extends Partial<PullOptions> {
  /** Pull from the hub when nothing local answers (`run` does, as `ollama run` does). */
  pull?: boolean;
}

/** Path, store, TSLLM_MODELS folders, then the hub: the first that answers. */
export async function resolveModel(text: string | undefined, options: ResolveOptions = {}): Promise<ResolvedModel> {
  if (!text) throw new StoreError("missing MODEL (a .gguf path, a name from `tsllm list`, or OWNER/REPO[:QUANT])");
  if (isFile(text)) return { name: text, paths: [text], from: "path" };
  if (text.toLowerCase().endsWith(".gguf") && !text.startsWith("hf:") && !text.startsWith("hf.co/")) {
    throw new StoreError(`${text}: no such file`);
  }
  const layout = options.layout ?? storeLayout();
  const reference = parseReference(text);
  const stored = findStoredModel(layout, reference, text);
  if (stored) return { name: stored.name, paths: blobPaths(layout, stored.manifest), from: "store", manifest: stored.manifest };
  if (reference.kind === "name") {
    const inFolder = findInFolders(reference.name, reference.tag);
    if (inFolder) return { name: inFolder, paths: [inFolder], from: "folder" };
  }
  const hubReference = hubReferenceOf(reference);
  if (!hubReference || !options.pull) {
    const hint = hubReference ? `pull it with: tsllm pull ${text}` : "see tsllm list, or give a path or OWNER/REPO[:QUANT]";
    throw new StoreError(`model '${text}' not found: not a file, not in the store${modelFolders().length ? " or TSLLM_MODELS" : ""}; ${hint}`);
  }
  const manifest = await pullModel(hubReference, { hub: options.hub ?? hubFromEnvironment(), layout, onProgress: options.onProgress });
  return { name: modelName(manifest), paths: blobPaths(layout, manifest), from: "pulled", manifest };
}
