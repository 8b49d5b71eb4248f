import { GgmlType } from "../gguf/ggml-types.js";
import { quantTarget } from "../quantize/file-types.js";
import { ModelTraits, TensorTypePicker } from "../quantize/tensor-types.js";

/**
 * What a synthetic model is quantized to: one type for every matrix, or a llama-quantize mix such as
 * Q4_K_M, whose tensor-by-tensor choices are llama-quantize's, so that speed figures compare like with like.
 */
export interface QuantPlan {
  name: string;
  /** llama_ftype, written as general.file_type. */
  fileType: number;
  /** A fresh chooser for one model; tensors must be asked for block by block. */
  picker(model: ModelTraits): (tensor: string, cols: number) => GgmlType;
}

const PURE_FILE_TYPES: Partial<Record<GgmlType, number>> = {
  [GgmlType.F32]: 0,
  [GgmlType.F16]: 1,
  [GgmlType.Q4_0]: 2,
  [GgmlType.Q4_1]: 3,
  [GgmlType.Q8_0]: 7,
  [GgmlType.Q5_0]: 8,
  [GgmlType.Q5_1]: 9,
  [GgmlType.Q2_K]: 10,
  [GgmlType.Q3_K]: 11,
  [GgmlType.Q4_K]: 14,
  [GgmlType.Q5_K]: 16,
  [GgmlType.Q6_K]: 18,
  [GgmlType.BF16]: 32,
};

export function pureQuant(type: GgmlType, name: string): QuantPlan {
  return { name, fileType: PURE_FILE_TYPES[type] ?? 0, picker: () => () => type };
}

/** A mix by name (Q4_K_M, Q3_K_S …), or a pure plan for any type name that `typeFromName` accepts. */
export function quantPlanNamed(name: string, typeFromName: (name: string) => GgmlType | undefined): QuantPlan | undefined {
  const target = quantTarget(name);
  if (target && /_K_[SML]$/.test(target.name) && name.toUpperCase() === target.name) {
    return { name: target.name, fileType: target.fileType, picker: (model) => {
      const picker = new TensorTypePicker(target, model);
      return (tensor, cols) => picker.typeFor(tensor, cols);
    } };
  }
  const type = typeFromName(name);
  return type === undefined ? undefined : pureQuant(type, name.toUpperCase());
}
