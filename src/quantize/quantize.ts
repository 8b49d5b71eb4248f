import { renameSync, rmSync } from "node:fs";
import { GgmlType, ggmlTypeName } from "../gguf/ggml-types.js";
import { Metadata } from "../gguf/metadata.js";
import { GgufFile } from "../gguf/reader.js";
import { GgufValue, GgufValueType } from "../gguf/types.js";
import { TensorToWrite, writeGguf } from "../gguf/writer.js";
import { quantFormat, rowBytes } from "../quant/index.js";
import { QuantizeError } from "./errors.js";
import { isQuantizedType, QuantTarget } from "./file-types.js";
import { isQuantizable, llamaTensorOrder, ModelTraits, TensorTypePicker } from "./tensor-types.js";

export interface QuantizeOptions {
  /** One type for every matrix (llama-quantize --pure). */
  pure?: boolean;
  /** Quantize tensors that are already quantized (llama-quantize --allow-requantize). */
  allowRequantize?: boolean;
  /** Called after each tensor is written. */
  onTensor?: (done: number, total: number, name: string, type: GgmlType) => void;
}

const GGML_QUANTIZATION_VERSION = 2;

function modelTraits(file: GgufFile): ModelTraits {
  const meta = new Metadata(file.metadata);
  const architecture = meta.string("general.architecture") ?? "llama";
  const number = (key: string): number | undefined => meta.number(`${architecture}.${key}`);
  const heads = number("attention.head_count") ?? 1;
  const kvHeads = number("attention.head_count_kv") ?? heads;
  const layers = number("block_count") ?? 0;
  return {
    architecture,
    layers,
    gqa: kvHeads > 0 ? heads / kvHeads : 1,
    experts: number("expert_count") ?? 0,
    hasOutput: file.tensor("output.weight") !== undefined,
    attentionV: file.tensors.filter((t) => t.name.includes("attn_v.weight") || t.name.includes("attn_qkv.weight")).length,
    is70B: architecture === "llama" && layers === 80 && number("embedding_length") === 8192,
  };
}

/** The input's metadata with llama-quantize's changes: split keys dropped, version and file type set (last, as gguf does). */
function outputMetadata(input: Map<string, GgufValue>, fileType: number): Map<string, GgufValue> {
  const out = new Map(input);
  for (const key of ["split.no", "split.count", "split.tensors.count", "general.quantization_version", "general.file_type"]) out.delete(key);
  out.set("general.quantization_version", { type: GgufValueType.UINT32, value: GGML_QUANTIZATION_VERSION });
  out.set("general.file_type", { type: GgufValueType.UINT32, value: fileType });
  return out;
}

/**
 * Writes `inputPath` quantized to `target` as llama-quantize does: its tensor order, its per-tensor
 * type rules (unless pure), its metadata changes, and the same quantized bytes.
 */
export function quantizeModel(input: GgufFile, outputPath: string, target: QuantTarget, options: QuantizeOptions = {}): { types: Map<string, GgmlType>; fallbacks: number } {
  const picker = new TensorTypePicker(target, modelTraits(input));
  const ordered = [...input.tensors].sort((a, b) => llamaTensorOrder(a.name, b.name));
  const types = new Map<string, GgmlType>();
  for (const info of ordered) {
    let type = info.type;
    if (isQuantizable(info.name, info.dims)) {
      type = !options.pure && isQuantizedType(target.baseType) ? picker.typeFor(info.name, info.dims[0]) : target.baseType;
      if (info.dims[0] % quantFormat(type).blockSize !== 0) {
        throw new QuantizeError(`${info.name}: rows of ${info.dims[0]} values do not fit ${ggmlTypeName(type)} blocks of ${quantFormat(type).blockSize}`);
      }
      if (type !== info.type && isQuantizedType(info.type) && !options.allowRequantize) {
        throw new QuantizeError(`${info.name} is already ${ggmlTypeName(info.type)}: requantizing loses quality; pass --allow-requantize to do it anyway`);
      }
    }
    types.set(info.name, type);
  }

  let done = 0;
  const tensors: TensorToWrite[] = ordered.map((info) => ({
    name: info.name,
    dims: info.dims,
    type: types.get(info.name) as GgmlType,
    data: () => {
      const type = types.get(info.name) as GgmlType;
      const bytes = type === info.type ? input.readTensorData(info) : convertTensor(input.readTensorData(info), info.type, type, info.dims);
      options.onTensor?.(++done, ordered.length, info.name, type);
      return bytes;
    },
  }));
  // written under a temporary name, so that a failure part-way never leaves a file that looks like a model
  const temporary = `${outputPath}.${process.pid}.partial`;
  try {
    writeGguf(temporary, { version: 3, metadata: outputMetadata(input.metadata, target.fileType), tensors });
    renameSync(temporary, outputPath);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  return { types, fallbacks: picker.fallbacks };
}

/** Row by row through f32: dequantize (or widen) the source, quantize to the target. */
function convertTensor(source: Uint8Array, from: GgmlType, to: GgmlType, dims: readonly number[]): Uint8Array {
  const cols = dims[0];
  const rows = dims.slice(1).reduce((a, b) => a * b, 1);
  const inFormat = quantFormat(from);
  const outFormat = quantFormat(to);
  const inRow = rowBytes(inFormat, cols);
  const outRow = rowBytes(outFormat, cols);
  const out = new Uint8Array(outRow * rows);
  const values = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    inFormat.dequantizeRow(source, r * inRow, values, 0, cols);
    outFormat.quantizeRow(values, 0, out, r * outRow, cols);
  }
  return out;
}
