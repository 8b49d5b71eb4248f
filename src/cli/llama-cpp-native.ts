import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "./fail.js";

/**
 * node-llama-cpp's own prebuilt llama.cpp libraries, called directly through koffi (both dev
 * dependencies, loaded only by `bench --compare` and `npm run bench:serve`): llama_decode runs
 * synchronously on this thread with a persistent ggml threadpool attached, as llama-bench runs it.
 *
 * Through node-llama-cpp's JS API each llama_decode runs on a libuv thread with no threadpool, so ggml
 * starts its worker thread afresh every decode, and on this 2-vCPU VM every decode took about 10 ms
 * longer than the same libraries called here (a 260K-parameter model: 10–15 ms a token against
 * 0.3–0.9 ms). That is a fifth of a TinyLlama token: measured through it, llama.cpp looks slower than it is.
 */
export interface NativeLlamaCpp {
  loadModel(path: string): NativeModel;
}

export interface NativeModel {
  /** A context of `sequences` sequences (1 by default) sharing `contextSize` cells, as llama.cpp's n_seq_max splits them. */
  createContext(options: { contextSize: number; batchSize: number; threads: number; sequences?: number }): NativeContext;
  dispose(): void;
}

export interface NativeContext {
  /** One llama_decode of these tokens at the next positions of sequence 0 (the last one's logits only), finished. */
  decode(tokens: Int32Array): void;
  /** One llama_decode of tokens of any sequences (at most batchSize), finished: llama-server's step. */
  decodeEntries(entries: readonly BatchEntry[]): void;
  /** The logits of the last decode's last token (llama_get_logits_ith(−1)), copied. */
  lastLogits(): Float32Array;
  /** The logits of entry `index` of the last decodeEntries (one that asked for them), copied. */
  logitsAt(index: number): Float32Array;
  dispose(): void;
}

export interface BatchEntry {
  token: number;
  position: number;
  sequence: number;
  /** Whether its logits are wanted. */
  logits: boolean;
}

// Struct layouts of llama.h in the llama.cpp that node-llama-cpp 3.21.1 ships (its bundled source, offsetof).
const MODEL_PARAMS = { bytes: 80, loadMode: 24 };
const CONTEXT_PARAMS = { bytes: 160, nCtx: 0, nBatch: 4, nUbatch: 8, nSeqMax: 12, nThreads: 28, nThreadsBatch: 32, flashAttention: 52 };
/** llama_batch: n_tokens, then pointers to token, embd, pos, n_seq_id, seq_id and logits arrays. */
const BATCH = { bytes: 56, nTokens: 0, token: 8, pos: 24, nSeqId: 32, seqId: 40, logits: 48 };
/** ggml_threadpool_params: a 512-entry CPU mask and four small fields (528 bytes); room to spare. */
const THREADPOOL_PARAMS_BYTES = 1024;
const LOAD_MODE_NONE = 0; // read the weights into memory (node-llama-cpp's useMmap: false)
const FLASH_ATTENTION_DISABLED = 0;
const GGML_BACKEND_DEVICE_TYPE_CPU = 0;

/** A struct passed and returned by value as bytes: larger than 16 bytes, so the ABI moves it through memory whatever its fields. */
interface StructBytes {
  bytes: Uint8Array;
}

type Pointer = unknown;

interface KoffiModule {
  load(path: string): { func(definition: string): (...args: unknown[]) => unknown };
  struct(name: string, fields: Record<string, [number, unknown]>): unknown;
  array(type: string, length: number, hint: "Typed"): unknown;
  proto(definition: string): unknown;
  pointer(type: unknown): unknown;
  register(callback: (...args: unknown[]) => void, type: unknown): unknown;
  call(pointer: Pointer, type: unknown, ...args: unknown[]): unknown;
  decode(pointer: Pointer, type: unknown): unknown;
  view(pointer: bigint, bytes: number): ArrayBuffer;
}

let opened: NativeLlamaCpp | undefined;

export async function openNativeLlamaCpp(): Promise<NativeLlamaCpp> {
  if (opened) return opened;
  let koffi: KoffiModule;
  try {
    koffi = (await import("koffi")).default as unknown as KoffiModule;
  } catch {
    throw new UsageError("--compare needs koffi and node-llama-cpp (dev dependencies: run from the repository after npm ci)");
  }
  const bins = binariesFolder();
  const library = (pattern: RegExp): string => {
    const file = readdirSync(bins).find((name) => pattern.test(name));
    if (!file) throw new UsageError(`node-llama-cpp's binaries in ${bins} lack a library matching ${pattern}`);
    return join(bins, file);
  };
  const base = koffi.load(library(/^libggml-base\.(so|dylib)$/));
  const ggml = koffi.load(library(/^libggml(\.v[\d.]+)?\.(so|dylib)$/));
  const llama = koffi.load(library(/^libllama(\.v[\d.]+)?\.(so|dylib)$/));
  const opaque = (name: string, bytes: number): unknown => koffi.struct(name, { bytes: [8, koffi.array("uint8", bytes, "Typed")] });
  opaque("llama_model_params", MODEL_PARAMS.bytes);
  opaque("llama_context_params", CONTEXT_PARAMS.bytes);
  opaque("llama_batch", BATCH.bytes);
  const logCallback = koffi.proto("void tsllm_ggml_log(int level, const char *text, void *data)");
  const threadpoolNew = koffi.proto("void *tsllm_threadpool_new(void *params)");
  const threadpoolFree = koffi.proto("void tsllm_threadpool_free(void *pool)");

  const c = {
    logSet: llama.func("void llama_log_set(tsllm_ggml_log *callback, void *data)"),
    loadBackends: ggml.func("void ggml_backend_load_all_from_path(const char *dir)"),
    backendInit: llama.func("void llama_backend_init()"),
    modelDefaults: llama.func("llama_model_params llama_model_default_params()") as () => StructBytes,
    contextDefaults: llama.func("llama_context_params llama_context_default_params()") as () => StructBytes,
    loadModel: llama.func("void *llama_model_load_from_file(const char *path, llama_model_params params)"),
    freeModel: llama.func("void llama_model_free(void *model)"),
    initContext: llama.func("void *llama_init_from_model(void *model, llama_context_params params)"),
    freeContext: llama.func("void llama_free(void *context)"),
    attachThreadpool: llama.func("void llama_attach_threadpool(void *context, void *pool, void *batchPool)"),
    batchInit: llama.func("llama_batch llama_batch_init(int32_t tokens, int32_t embd, int32_t sequences)") as (tokens: number, embd: number, sequences: number) => StructBytes,
    batchFree: llama.func("void llama_batch_free(llama_batch batch)"),
    batchGetOne: llama.func("llama_batch llama_batch_get_one(int32_t *tokens, int32_t count)") as (tokens: Int32Array, count: number) => StructBytes,
    decode: llama.func("int32_t llama_decode(void *context, llama_batch batch)") as (context: Pointer, batch: StructBytes) => number,
    synchronize: llama.func("void llama_synchronize(void *context)"),
    logitsOf: llama.func("float *llama_get_logits_ith(void *context, int32_t i)"),
    vocabOf: llama.func("void *llama_model_get_vocab(void *model)"),
    vocabSize: llama.func("int32_t llama_vocab_n_tokens(void *vocab)") as (vocab: Pointer) => number,
    deviceByType: ggml.func("void *ggml_backend_dev_by_type(int type)"),
    deviceRegistry: base.func("void *ggml_backend_dev_backend_reg(void *device)"),
    procAddress: base.func("void *ggml_backend_reg_get_proc_address(void *registry, const char *name)"),
    threadpoolParamsInit: base.func("void ggml_threadpool_params_init(void *params, int threads)"),
  };
  // llama.cpp logs to stderr unless told otherwise; its messages would interleave with the report. The
  // callback only ever runs on this thread, inside our own calls (ggml's worker threads write to stderr
  // themselves): koffi would queue a call from another thread to the event loop, which a decode holds.
  c.logSet(koffi.register(() => {}, koffi.pointer(logCallback)), null);
  c.loadBackends(bins);
  c.backendInit();
  // the CPU backend is a library chosen at run time (per CPU generation); its threadpool calls come through its registry
  const cpu = c.deviceRegistry(c.deviceByType(GGML_BACKEND_DEVICE_TYPE_CPU));
  const newPool = c.procAddress(cpu, "ggml_threadpool_new");
  const freePool = c.procAddress(cpu, "ggml_threadpool_free");
  if (!newPool || !freePool) throw new UsageError("node-llama-cpp's CPU backend has no ggml_threadpool_new");

  const modelDefaults = c.modelDefaults();
  const contextDefaults = c.contextDefaults();
  checkLayout(contextDefaults);

  opened = {
    loadModel(path) {
      const params = copyStruct(modelDefaults);
      view(params).setInt32(MODEL_PARAMS.loadMode, LOAD_MODE_NONE, true);
      const model = c.loadModel(path, params);
      if (!model) throw new UsageError(`llama.cpp could not load ${path}`);
      const logitsType = koffi.array("float", c.vocabSize(c.vocabOf(model)), "Typed");
      return {
        createContext({ contextSize, batchSize, threads, sequences = 1 }) {
          const params = copyStruct(contextDefaults);
          const fields = view(params);
          fields.setUint32(CONTEXT_PARAMS.nCtx, contextSize, true);
          fields.setUint32(CONTEXT_PARAMS.nBatch, batchSize, true);
          fields.setUint32(CONTEXT_PARAMS.nUbatch, batchSize, true);
          fields.setUint32(CONTEXT_PARAMS.nSeqMax, sequences, true);
          fields.setInt32(CONTEXT_PARAMS.nThreads, threads, true);
          fields.setInt32(CONTEXT_PARAMS.nThreadsBatch, threads, true);
          fields.setInt32(CONTEXT_PARAMS.flashAttention, FLASH_ATTENTION_DISABLED, true);
          const context = c.initContext(model, params);
          if (!context) throw new UsageError("llama.cpp could not create a context");
          const poolParams = Buffer.alloc(THREADPOOL_PARAMS_BYTES);
          c.threadpoolParamsInit(poolParams, threads);
          const pool = koffi.call(newPool, threadpoolNew, poolParams);
          c.attachThreadpool(context, pool, null);
          let batch: EntryBatch | undefined;
          const logitsAt = (index: number): Float32Array => (koffi.decode(c.logitsOf(context, index), logitsType) as Float32Array).slice();
          const finish = (status: number): void => {
            if (status !== 0) throw new Error(`llama_decode failed (${status})`);
            c.synchronize(context);
          };
          return {
            decode: (tokens) => finish(c.decode(context, c.batchGetOne(tokens, tokens.length))),
            decodeEntries(entries) {
              if (entries.length > batchSize) throw new RangeError(`${entries.length} tokens exceed the batch of ${batchSize}`);
              const arrays = (batch ??= entryBatch(koffi, c.batchInit(batchSize, 0, 1), batchSize));
              entries.forEach(({ token, position, sequence, logits }, i) => {
                arrays.token[i] = token;
                arrays.position[i] = position;
                arrays.seqIdCount[i] = 1;
                arrays.seqIds[i][0] = sequence;
                arrays.logits[i] = logits ? 1 : 0;
              });
              view(arrays.struct).setInt32(BATCH.nTokens, entries.length, true);
              finish(c.decode(context, arrays.struct));
            },
            lastLogits: () => logitsAt(-1),
            logitsAt,
            dispose() {
              if (batch) c.batchFree(batch.struct);
              c.freeContext(context);
              koffi.call(freePool, threadpoolFree, pool);
            },
          };
        },
        dispose: () => c.freeModel(model),
      };
    },
  };
  return opened;
}

/** A llama_batch from llama_batch_init with views of its arrays (one sequence id a token). */
interface EntryBatch {
  struct: StructBytes;
  token: Int32Array;
  position: Int32Array;
  seqIdCount: Int32Array;
  seqIds: Int32Array[];
  logits: Int8Array;
}

function entryBatch(koffi: KoffiModule, struct: StructBytes, capacity: number): EntryBatch {
  const fields = view(struct);
  const array = (offset: number, bytes: number): ArrayBuffer => koffi.view(fields.getBigUint64(offset, true), bytes);
  const seqIdPointers = new BigUint64Array(array(BATCH.seqId, capacity * 8));
  return {
    struct,
    token: new Int32Array(array(BATCH.token, capacity * 4)),
    position: new Int32Array(array(BATCH.pos, capacity * 4)),
    seqIdCount: new Int32Array(array(BATCH.nSeqId, capacity * 4)),
    seqIds: Array.from(seqIdPointers, (pointer) => new Int32Array(koffi.view(pointer, 4))),
    logits: new Int8Array(array(BATCH.logits, capacity)),
  };
}

/** node-llama-cpp's platform package of CPU binaries (an optional dependency of node-llama-cpp). */
function binariesFolder(): string {
  const platform = `${process.platform}-${process.arch}`;
  try {
    // the package's entry point is dist/index.js; its libraries sit in bins/PLATFORM beside dist
    const entry = fileURLToPath(import.meta.resolve(`@node-llama-cpp/${platform}`));
    return join(dirname(dirname(entry)), "bins", platform);
  } catch {
    throw new UsageError(`--compare needs node-llama-cpp's binaries for ${platform} (@node-llama-cpp/${platform}, installed with node-llama-cpp)`);
  }
}

/** The defaults llama_context_default_params gives where this file expects them: else the layout is another version's. */
function checkLayout(defaults: StructBytes): void {
  const fields = view(defaults);
  const found = [CONTEXT_PARAMS.nCtx, CONTEXT_PARAMS.nBatch, CONTEXT_PARAMS.nUbatch, CONTEXT_PARAMS.nSeqMax].map((at) => fields.getUint32(at, true));
  if (found.join() !== "512,2048,512,1") {
    throw new UsageError(`node-llama-cpp's llama.cpp has a llama_context_params layout this bench does not know (defaults read ${found.join(", ")}); it knows node-llama-cpp 3.21.1's`);
  }
}

function copyStruct(struct: StructBytes): StructBytes {
  return { bytes: struct.bytes.slice() };
}

function view(struct: StructBytes): DataView {
  return new DataView(struct.bytes.buffer, struct.bytes.byteOffset, struct.bytes.byteLength);
}
