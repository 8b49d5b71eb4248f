import { StoreError } from "./errors.js";

/** What a model argument names, before anything is looked up. */
export type ModelReference =
  | { kind: "hub-file"; repo: string; file: string; revision: string }
  | { kind: "hub-repo"; repo: string; quant?: string; revision: string }
  | { kind: "name"; name: string; tag?: string };

const NAME_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,95})$/;
const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkPart(part: string, what: string, text: string): string {
  if (!NAME_PART.test(part) || part.includes("..")) throw new StoreError(`${text}: '${part}' is not a valid ${what}`);
  return part;
}

function checkTag(tag: string | undefined, text: string): string | undefined {
  if (tag === undefined) return undefined;
  if (!TAG.test(tag)) throw new StoreError(`${text}: '${tag}' is not a valid tag`);
  return tag;
}

/** Splits a trailing `:TAG` off (a Windows drive letter never reaches here: paths are resolved first). */
function splitTag(text: string): [string, string | undefined] {
  const colon = text.lastIndexOf(":");
  return colon < 0 ? [text, undefined] : [text.slice(0, colon), text.slice(colon + 1)];
}

/**
 * Parses `hf:OWNER/REPO/FILE.gguf`, `hf:OWNER/REPO[:QUANT]` (also `hf.co/…`), `OWNER/REPO[:QUANT]` and
 * `NAME[:TAG]`. Paths are not references: callers try the file system first.
 */
export function parseReference(text: string): ModelReference {
  let rest = text.trim();
  const hubPrefix = /^(hf:|hf\.co\/|huggingface\.co\/)/.exec(rest);
  if (hubPrefix) rest = rest.slice(hubPrefix[0].length);
  const segments = rest.split("/");
  if (hubPrefix && segments.length >= 3) {
    const [owner, repo, ...fileParts] = segments;
    if (fileParts.some((p) => p === "" || p === "." || p === "..")) throw new StoreError(`${text}: bad file path in the reference`);
    const file = fileParts.join("/");
    if (!file.toLowerCase().endsWith(".gguf")) throw new StoreError(`${text}: the file must be a .gguf`);
    return { kind: "hub-file", repo: `${checkPart(owner, "owner", text)}/${checkPart(repo, "repository name", text)}`, file, revision: "main" };
  }
  if (segments.length === 2) {
    const [owner, repoAndTag] = segments;
    const [repo, quant] = splitTag(repoAndTag);
    return {
      kind: "hub-repo",
      repo: `${checkPart(owner, "owner", text)}/${checkPart(repo, "repository name", text)}`,
      quant: checkTag(quant, text)?.toUpperCase(),
      revision: "main",
    };
  }
  if (hubPrefix || segments.length > 2) throw new StoreError(`${text}: expected OWNER/REPO[:QUANT] or hf:OWNER/REPO/FILE.gguf`);
  const [name, tag] = splitTag(rest);
  if (name === "") throw new StoreError("missing model name");
  return { kind: "name", name: checkPart(name, "model name", text), tag: checkTag(tag, text) };
}
