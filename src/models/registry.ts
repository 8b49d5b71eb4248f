import { Backend } from "../backend/backend.js";
import { GgufFile } from "../gguf/reader.js";
import { Metadata } from "../gguf/metadata.js";
import { LanguageModel, ModelError } from "./model.js";
import { HyperParams, WeightSource } from "./weights.js";

export interface ModelContext {
  backend: Backend;
  hparams: HyperParams;
  weights: WeightSource;
}

export type ArchitectureFactory = (context: ModelContext) => LanguageModel;

const architectures = new Map<string, ArchitectureFactory>();

export function registerArchitecture(name: string, factory: ArchitectureFactory): void {
  architectures.set(name, factory);
}

export function supportedArchitectures(): string[] {
  return [...architectures.keys()];
}

export function buildModel(file: GgufFile, backend: Backend): LanguageModel {
  const metadata = new Metadata(file.metadata);
  const arch = metadata.string("general.architecture");
  if (!arch) throw new ModelError("general.architecture is missing");
  const factory = architectures.get(arch);
  if (!factory) throw new ModelError(`unsupported architecture '${arch}' (supported: ${supportedArchitectures().join(", ")})`);
  if (file.tensors.length === 0) throw new ModelError("the file holds no tensors (a vocab-only GGUF cannot generate)");
  return factory({ backend, hparams: new HyperParams(metadata, arch), weights: new WeightSource(file) });
}
