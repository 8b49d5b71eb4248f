import { GgmlType } from "../gguf/ggml-types.js";
import { GgufValue, GgufValueType } from "../gguf/types.js";
import { TensorToWrite, writeGguf } from "../gguf/writer.js";
import { quantFormat, rowBytes } from "../quant/index.js";
import { QuantPlan } from "./mix.js";
import { NormalSource } from "./normal.js";
import { ModelShape } from "./presets.js";

/**
 * The architectures `dev synth` writes: llama (Mixtral when the shape has experts), qwen2 (Q/K/V biases,
 * NeoX RoPE), qwen3 (per-head Q/K norms, NeoX RoPE), their mixture-of-experts forms qwen2moe (with a
 * gated shared expert) and qwen3moe, and gemma2 / gemma3 (post-norms, sliding windows, soft-capping in
 * gemma2, Q/K norms in gemma3; the output always tied to the embeddings, as Gemma's is), and phi3
 * (fused QKV and gate-up matrices, LongRoPE factors when the shape gives an original context).
 */
export const SYNTH_ARCHITECTURES = ["llama", "qwen2", "qwen3", "qwen2moe", "qwen3moe", "gemma2", "gemma3", "phi3"] as const;
export type SynthArchitecture = (typeof SYNTH_ARCHITECTURES)[number];

/** Architectures whose every block is a mixture of experts (the shape must give them experts). */
const MOE_ONLY = new Set<SynthArchitecture>(["qwen2moe", "qwen3moe"]);

export interface SynthOptions {
  architecture?: SynthArchitecture;
  shape: ModelShape;
  quant: QuantPlan;
  /** Metadata (a GGUF's, usually) whose tokenizer.* keys the model takes over as its vocabulary. */
  vocabFrom: { metadata: ReadonlyMap<string, GgufValue> };
  seed: number;
  name?: string;
}

/** Projection scale: calm enough that the residual stream stays well-conditioned, like a trained model. */
const PROJ = 0.5;
/** Output scale: logits with a clear top token, so greedy runs are not decided by ties. */
const OUT = 4;
/** Above this many parameters, matrices are assembled from a pool of quantized rows (see pooledBytes). */
const POOLED_ABOVE = 100_000_000;
/** Distinct random rows per pooled matrix. */
const POOL_ROWS = 64;

export interface TensorPlan {
  name: string;
  dims: number[];
  type: GgmlType;
  std: number;
  mean: number;
}

/** Where a row length does not fit the type's blocks, llama.cpp's quantizer falls back the same way. */
function typeFor(requested: GgmlType, cols: number): GgmlType {
  const format = quantFormat(requested);
  if (cols % format.blockSize === 0) return requested;
  return cols % 32 === 0 ? GgmlType.Q8_0 : GgmlType.F16;
}

/** The tensors of a llama-architecture model of this shape, with the types `quant` gives them. */
export function planTensors(shape: ModelShape, vocabSize: number, quant: QuantPlan, architecture: SynthArchitecture = "llama"): TensorPlan[] {
  const { embedding: d, heads, kvHeads, feedForward: ff, experts } = shape;
  const headDim = headSize(shape);
  const gemma = architecture === "gemma2" || architecture === "gemma3";
  if (MOE_ONLY.has(architecture) && !experts) throw new Error(`${architecture} needs a shape with experts`);
  const pick = quant.picker({
    architecture: "llama",
    layers: shape.layers,
    gqa: heads / kvHeads,
    experts: experts?.count ?? 0,
    hasOutput: !shape.tiedOutput,
    attentionV: shape.layers,
    is70B: false,
  });
  const matrix = (name: string, cols: number, rows: number, std: number): TensorPlan => {
    return { name, dims: [cols, rows], type: typeFor(pick(name, cols), cols), std, mean: 0 };
  };
  const stacked = (name: string, cols: number, rows: number, std: number): TensorPlan => {
    const count = experts?.count ?? 1;
    return { name, dims: [cols, rows, count], type: typeFor(pick(name, cols), cols), std, mean: 0 };
  };
  const norm = (name: string): TensorPlan => ({ name, dims: [d], type: GgmlType.F32, std: 0.1, mean: 1 });
  const feedForward = (b: string): TensorPlan[] => {
    if (architecture === "phi3") {
      return [matrix(`${b}.ffn_up.weight`, d, 2 * ff, PROJ / Math.sqrt(d)), matrix(`${b}.ffn_down.weight`, ff, d, PROJ / Math.sqrt(ff))];
    }
    if (!experts) {
      return [
        matrix(`${b}.ffn_gate.weight`, d, ff, PROJ / Math.sqrt(d)),
        matrix(`${b}.ffn_up.weight`, d, ff, PROJ / Math.sqrt(d)),
        matrix(`${b}.ffn_down.weight`, ff, d, PROJ / Math.sqrt(ff)),
      ];
    }
    const width = experts.feedForward;
    // the router's logits spread over a few nats, so each token prefers some experts clearly
    const plans = [
      { name: `${b}.ffn_gate_inp.weight`, dims: [d, experts.count], type: GgmlType.F32, std: 2 / Math.sqrt(d), mean: 0 },
      stacked(`${b}.ffn_gate_exps.weight`, d, width, PROJ / Math.sqrt(d)),
      stacked(`${b}.ffn_up_exps.weight`, d, width, PROJ / Math.sqrt(d)),
      stacked(`${b}.ffn_down_exps.weight`, width, d, PROJ / Math.sqrt(width)),
    ];
    if (architecture === "qwen2moe") {
      plans.push(
        { name: `${b}.ffn_gate_inp_shexp.weight`, dims: [d], type: GgmlType.F32, std: 1 / Math.sqrt(d), mean: 0 },
        matrix(`${b}.ffn_gate_shexp.weight`, d, ff, PROJ / Math.sqrt(d)),
        matrix(`${b}.ffn_up_shexp.weight`, d, ff, PROJ / Math.sqrt(d)),
        matrix(`${b}.ffn_down_shexp.weight`, ff, d, PROJ / Math.sqrt(ff)),
      );
    }
    return plans;
  };
  // A tied embedding doubles as the output matrix, so it takes the output's scale.
  const plans: TensorPlan[] = [matrix("token_embd.weight", d, vocabSize, shape.tiedOutput ? OUT / Math.sqrt(d) : 1)];
  if (shape.llama3RopeScaling) plans.push({ name: "rope_freqs.weight", dims: [headDim / 2], type: GgmlType.F32, std: 0, mean: 1 });
  if (architecture === "phi3" && shape.ropeOriginalContext) {
    for (const name of ["rope_factors_long.weight", "rope_factors_short.weight"]) plans.push({ name, dims: [headDim / 2], type: GgmlType.F32, std: 0, mean: 1 });
  }
  for (let i = 0; i < shape.layers; i++) {
    const b = `blk.${i}`;
    plans.push(
      norm(`${b}.attn_norm.weight`),
      ...(architecture === "phi3"
        ? [matrix(`${b}.attn_qkv.weight`, d, (heads + 2 * kvHeads) * headDim, PROJ / Math.sqrt(d))]
        : [
            matrix(`${b}.attn_q.weight`, d, heads * headDim, PROJ / Math.sqrt(d)),
            matrix(`${b}.attn_k.weight`, d, kvHeads * headDim, PROJ / Math.sqrt(d)),
            matrix(`${b}.attn_v.weight`, d, kvHeads * headDim, PROJ / Math.sqrt(d)),
          ]),
      ...(architecture === "qwen2" || architecture === "qwen2moe"
        ? [
            { name: `${b}.attn_q.bias`, dims: [heads * headDim], type: GgmlType.F32, std: 0.1, mean: 0 },
            { name: `${b}.attn_k.bias`, dims: [kvHeads * headDim], type: GgmlType.F32, std: 0.1, mean: 0 },
            { name: `${b}.attn_v.bias`, dims: [kvHeads * headDim], type: GgmlType.F32, std: 0.1, mean: 0 },
          ]
        : []),
      ...(architecture === "qwen3" || architecture === "qwen3moe" || architecture === "gemma3"
        ? [
            { name: `${b}.attn_q_norm.weight`, dims: [headDim], type: GgmlType.F32, std: 0.1, mean: 1 },
            { name: `${b}.attn_k_norm.weight`, dims: [headDim], type: GgmlType.F32, std: 0.1, mean: 1 },
          ]
        : []),
      matrix(`${b}.attn_output.weight`, heads * headDim, d, PROJ / Math.sqrt(d)),
      ...(gemma ? [norm(`${b}.post_attention_norm.weight`)] : []),
      norm(`${b}.ffn_norm.weight`),
      ...feedForward(b),
      ...(gemma ? [norm(`${b}.post_ffw_norm.weight`)] : []),
    );
  }
  plans.push(norm("output_norm.weight"));
  if (!shape.tiedOutput && !gemma) plans.push(matrix("output.weight", d, vocabSize, OUT / Math.sqrt(d)));
  return plans;
}

/** The head size: the shape's own, or the embedding split evenly between the heads. */
export function headSize(shape: ModelShape): number {
  return shape.headDim ?? shape.embedding / shape.heads;
}

/** Llama-3.1's rope_freqs: long wavelengths slowed down by the scaling factor, short ones kept. */
function llama3RopeFactors(headDim: number, base: number): Float32Array {
  const factor = 32;
  const lowFreqFactor = 1;
  const highFreqFactor = 4;
  const originalContext = 8192;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / Math.pow(base, (2 * i) / headDim);
    const wavelength = (2 * Math.PI) / freq;
    if (wavelength < originalContext / highFreqFactor) out[i] = 1;
    else if (wavelength > originalContext / lowFreqFactor) out[i] = factor;
    else {
      const smooth = (originalContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

/** LongRoPE-like factors: close to 1 for the short set, growing to ~20 on the slow pairs for the long set. */
function longRopeFactors(headDim: number, long: boolean): Float32Array {
  const half = headDim / 2;
  return Float32Array.from({ length: half }, (_, i) => (long ? 1 + 20 * (i / half) ** 2 : 1 + 0.05 * (i / half)));
}

/**
 * A big random matrix without quantizing every row (llama-quantize's k-quant search is slow in JS):
 * POOL_ROWS rows are quantized, and each row of the matrix takes each of its blocks from a pool row
 * picked by a hash of (row, block). Blocks are self-contained, so every row is valid and rows differ.
 */
function pooledBytes(plan: TensorPlan, normal: NormalSource): Uint8Array {
  const format = quantFormat(plan.type);
  const cols = plan.dims[0];
  const rows = plan.dims.slice(1).reduce((a, b) => a * b, 1);
  const pool = tensorBytes({ ...plan, dims: [cols, POOL_ROWS] }, normal.fill(new Float32Array(cols * POOL_ROWS), plan.std, plan.mean));
  const stride = rowBytes(format, cols);
  const unitElements = format.blockSize === 1 ? 32 : format.blockSize;
  const unit = cols % unitElements === 0 ? rowBytes(format, unitElements) : stride;
  const out = new Uint8Array(stride * rows);
  for (let r = 0; r < rows; r++) {
    for (let at = 0; at < stride; at += unit) {
      const source = (Math.imul(r + 1, 0x9e3779b1) ^ Math.imul(at / unit + 1, 0x85ebca6b)) >>> 0;
      const from = ((source ^ (source >>> 15)) % POOL_ROWS) * stride + at;
      out.set(pool.subarray(from, from + unit), r * stride + at);
    }
  }
  return out;
}

function tensorBytes(plan: TensorPlan, values: Float32Array): Uint8Array {
  const format = quantFormat(plan.type);
  const cols = plan.dims[0];
  const rows = values.length / cols;
  const stride = rowBytes(format, cols);
  const out = new Uint8Array(stride * rows);
  for (let r = 0; r < rows; r++) format.quantizeRow(values, r * cols, out, r * stride, cols);
  return out;
}

export function synthesizeModel(path: string, options: SynthOptions): { tensors: number; parameters: number } {
  const { shape, quant, vocabFrom, seed } = options;
  const arch = options.architecture ?? "llama";
  const tokens = vocabFrom.metadata.get("tokenizer.ggml.tokens");
  if (!tokens || tokens.type !== GgufValueType.ARRAY) throw new Error("the --vocab-from file has no tokenizer.ggml.tokens");
  const vocabSize = (tokens.value as unknown[]).length;
  const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
  const f32 = (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value });
  const metadata = new Map<string, GgufValue>([
    ["general.architecture", { type: GgufValueType.STRING, value: arch }],
    // llama.cpp sets Phi-3's token attributes for any model whose name says "phi3", and those need
    // Phi-3's own special tokens, which a borrowed vocabulary lacks
    ["general.name", { type: GgufValueType.STRING, value: options.name ?? `synthetic ${arch === "phi3" ? "Phi" : arch} ${quant.name}` }],
    ["general.file_type", u32(quant.fileType)],
    [`${arch}.context_length`, u32(shape.context)],
    [`${arch}.embedding_length`, u32(shape.embedding)],
    [`${arch}.block_count`, u32(shape.layers)],
    // Mixtral's experts are as wide as feed_forward_length says; the Qwen MoEs have a key of their own
    [`${arch}.feed_forward_length`, u32(arch === "llama" && shape.experts ? shape.experts.feedForward : shape.feedForward)],
    [`${arch}.attention.head_count`, u32(shape.heads)],
    [`${arch}.attention.head_count_kv`, u32(shape.kvHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(1e-5)],
    [`${arch}.rope.freq_base`, f32(shape.ropeBase)],
    [`${arch}.rope.dimension_count`, u32(headSize(shape))],
  ]);
  if (shape.experts) {
    metadata.set(`${arch}.expert_count`, u32(shape.experts.count));
    metadata.set(`${arch}.expert_used_count`, u32(shape.experts.used));
    if (arch !== "llama") metadata.set(`${arch}.expert_feed_forward_length`, u32(shape.experts.feedForward));
    if (arch === "qwen2moe") metadata.set(`${arch}.expert_shared_feed_forward_length`, u32(shape.feedForward));
  }
  if (shape.headDim !== undefined) {
    metadata.set(`${arch}.attention.key_length`, u32(shape.headDim));
    metadata.set(`${arch}.attention.value_length`, u32(shape.headDim));
  }
  if (arch === "phi3" && shape.ropeOriginalContext) {
    const original = shape.ropeOriginalContext;
    metadata.set(`${arch}.rope.scaling.original_context_length`, u32(original));
    // LongRoPE's attention factor for this context extension
    metadata.set(`${arch}.rope.scaling.attn_factor`, f32(Math.sqrt(1 + Math.log(shape.context / original) / Math.log(original))));
  }
  if (arch === "gemma2" || arch === "gemma3") {
    metadata.set(`${arch}.attention.sliding_window`, u32(shape.slidingWindow ?? 4096));
    // Gemma 2's published caps (Gemma 3 has none)
    if (arch === "gemma2") {
      metadata.set(`${arch}.attn_logit_softcapping`, f32(50));
      metadata.set(`${arch}.final_logit_softcapping`, f32(30));
    }
  }
  for (const [key, value] of vocabFrom.metadata) if (key.startsWith("tokenizer.")) metadata.set(key, value);

  const plans = planTensors(shape, vocabSize, quant, arch);
  const parameters = plans.reduce((s, p) => s + p.dims.reduce((a, b) => a * b, 1), 0);
  const pooled = parameters > POOLED_ABOVE;
  const normal = new NormalSource(seed);
  const tensors: TensorToWrite[] = plans.map((plan) => ({
    name: plan.name,
    dims: plan.dims,
    type: plan.type,
    data: () => {
      if (pooled && plan.dims.length >= 2) return pooledBytes(plan, normal);
      const count = plan.dims.reduce((a, b) => a * b, 1);
      const values =
        plan.name === "rope_freqs.weight"
          ? llama3RopeFactors(headSize(shape), shape.ropeBase)
          : plan.name.startsWith("rope_factors_")
            ? longRopeFactors(headSize(shape), plan.name.includes("long"))
            : normal.fill(new Float32Array(count), plan.std, plan.mean);
      return tensorBytes(plan, values);
    },
  }));
  writeGguf(path, { metadata, tensors });
  return { tensors: plans.length, parameters };
}
