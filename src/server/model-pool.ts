import { existsSync } from "node:fs";
import { basename } from "node:path";
import { createBackend, LoadedModel, loadModel } from "../engine/load.js";
import { Scheduler, SchedulerOptions } from "../engine/scheduler.js";
import { GgufError } from "../gguf/index.js";
import { ModelError } from "../models/model.js";
import { storeLayout } from "../store/home.js";
import { listStoredModels } from "../store/manifest.js";
import { resolveModel, ResolvedModel } from "../store/resolve.js";
import { ApiError } from "./errors.js";

export interface ServedModel {
  name: string;
  resolved: ResolvedModel;
  loaded?: { model: LoadedModel; scheduler: Scheduler; loadMs: number; expiresAt: number };
  unloadTimer?: NodeJS.Timeout;
  /** The keep-alive the last request asked for. */
  keepAliveMs?: number;
  /** Deleted while answering: unloaded as soon as its last request is done. */
  forgotten?: boolean;
}

export interface PoolOptions {
  /** The scheduler's settings; a sequence's context is the model's, at most the pool's tokens. */
  scheduler: Omit<SchedulerOptions, "contextSize">;
  threads?: number;
  /** The KV pool in bytes instead of tokens (--kv-memory). */
  kvMemoryBytes?: number;
  /** How long an idle model stays loaded (Ollama's keep_alive); negative: forever. */
  keepAliveMs: number;
}

export class UnknownModelError extends Error {}

/** How often a model waiting to be unloaded checks that its last request has finished. */
const IDLE_POLL_MS = 50;

/** The models a server answers for, each loaded on first use and unloaded when idle past its keep-alive. */
export class ModelPool {
  private readonly models = new Map<string, ServedModel>();

  constructor(private readonly options: PoolOptions) {}

  /** A model given on the command line: a path is named by its file name (or the alias), a store model by its store name. */
  async add(reference: string, alias?: string): Promise<ServedModel> {
    const resolved = await resolveModel(reference, { pull: false });
    const name = alias ?? (resolved.from === "store" ? resolved.name : basename(resolved.paths[0]).replace(/(-00001-of-\d{5})?\.gguf$/i, ""));
    const served: ServedModel = { name, resolved };
    this.models.set(name, served);
    return served;
  }

  /** Served models and, after them, the store's. */
  list(): ServedModel[] {
    const stored = listStoredModels(storeLayout()).filter((m) => !this.models.has(m.name));
    return [...this.models.values(), ...stored.map((m) => ({ name: m.name, resolved: { name: m.name, paths: [], from: "store" as const, manifest: m.manifest } }))];
  }

  loaded(): ServedModel[] {
    return [...this.models.values()].filter((m) => m.loaded);
  }

  /** The model a request names, loading it when needed; names outside the list resolve like the CLI's (store, TSLLM_MODELS). */
  async acquire(name: string, keepAliveMs = this.options.keepAliveMs): Promise<ServedModel & { loaded: NonNullable<ServedModel["loaded"]> }> {
    let served = this.models.get(name);
    if (!served) {
      // a request names a model, never a file: paths are the command line's to give
      if (name.includes("\0") || name.toLowerCase().endsWith(".gguf") || existsSync(name)) {
        throw new UnknownModelError(`model '${name}' not found`);
      }
      try {
        served = await this.add(name, name);
      } catch {
        throw new UnknownModelError(`model '${name}' not found`);
      }
    }
    if (!served.loaded) {
      const model = this.load(served);
      const kvType = this.options.scheduler.kvType ?? "f16";
      const problem = model.model.kvTypeProblem(kvType);
      if (problem) {
        model.file.close();
        model.backend.dispose?.();
        throw new ApiError(500, `${served.name}: ${problem}; serve it with --kv-type f16`, "model_load_failed");
      }
      const kvBytes = this.options.kvMemoryBytes;
      const kvTokens = kvBytes === undefined ? this.options.scheduler.kvTokens : Math.max(16, Math.floor(kvBytes / model.model.kvBytesPerToken(kvType)));
      const contextSize = Math.min(kvTokens, model.model.trainedContext);
      const scheduler = new Scheduler(model.model, model.tokenizer, { ...this.options.scheduler, kvTokens, contextSize });
      served.loaded = { model, scheduler, loadMs: model.loadMs, expiresAt: Infinity };
    }
    served.keepAliveMs = keepAliveMs;
    this.keepAlive(served, keepAliveMs);
    return served as ServedModel & { loaded: NonNullable<ServedModel["loaded"]> };
  }

  /** A file that is not a model we can run is the server's problem, told to the client in one line. */
  private load(served: ServedModel): LoadedModel {
    try {
      return loadModel(served.resolved.paths, createBackend("wasm", this.options.threads));
    } catch (error) {
      if (error instanceof GgufError || error instanceof ModelError) throw new ApiError(500, `${served.name}: ${error.message}`, "model_load_failed");
      throw error;
    }
  }

  /** A request is done with the model: its idle time starts again. */
  release(served: ServedModel): void {
    if (served.forgotten) this.unloadWhenIdle(served);
    else this.keepAlive(served, served.keepAliveMs ?? this.options.keepAliveMs);
  }

  /** Restarts the idle timer; a model with requests in flight is never unloaded. */
  keepAlive(served: ServedModel, keepAliveMs: number): void {
    clearTimeout(served.unloadTimer);
    if (!served.loaded) return;
    if (keepAliveMs < 0) {
      served.loaded.expiresAt = Infinity;
      return;
    }
    served.loaded.expiresAt = Date.now() + keepAliveMs;
    served.unloadTimer = setTimeout(() => {
      const load = served.loaded?.scheduler.load;
      if (load && load.running + load.waiting > 0) this.keepAlive(served, keepAliveMs);
      else this.unload(served);
    }, keepAliveMs);
    served.unloadTimer.unref();
  }

  unload(served: ServedModel): void {
    clearTimeout(served.unloadTimer);
    if (!served.loaded) return;
    served.loaded.scheduler.close();
    served.loaded.model.file.close();
    served.loaded.model.backend.dispose?.();
    served.loaded = undefined;
  }

  /**
   * The model is no longer served (deleted from the store): new requests do not find it, and the
   * requests it is answering finish before it is unloaded.
   */
  forget(name: string): void {
    const served = this.models.get(name);
    this.models.delete(name);
    if (!served) return;
    served.forgotten = true;
    this.unloadWhenIdle(served);
  }

  private unloadWhenIdle(served: ServedModel): void {
    clearTimeout(served.unloadTimer);
    const load = served.loaded?.scheduler.load;
    if (!load || load.running + load.waiting === 0) {
      this.unload(served);
      return;
    }
    served.unloadTimer = setTimeout(() => this.unloadWhenIdle(served), IDLE_POLL_MS);
    served.unloadTimer.unref();
  }

  close(): void {
    for (const served of this.models.values()) this.unload(served);
  }
}
