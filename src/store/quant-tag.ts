/**
 * The quant type a GGUF file's name announces, as hub repos name them: `Llama-3.2-1B-Q4_K_M.gguf`,
 * `model.IQ2_XXS-00001-of-00002.gguf`, `phi-3-f16.gguf`. Upper-cased; undefined when there is none.
 */
export function quantTagOf(fileName: string): string | undefined {
  const base = fileName.split("/").pop() ?? fileName;
  const stem = base.replace(/(-\d{5}-of-\d{5})?\.gguf$/i, "");
  const match = /(?:^|[-_.])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)$/i.exec(stem) ?? /(?:^|[-_.])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?=[-_.])/i.exec(stem);
  return match?.[1].toUpperCase();
}

/** A GGUF file's name without folders, the `.gguf` suffix or a split suffix. */
export function fileStem(fileName: string): string {
  const base = fileName.split("/").pop() ?? fileName;
  return base.replace(/(-\d{5}-of-\d{5})?\.gguf$/i, "");
}

/** The quant picked when a repo reference names none, in order of preference (llama.cpp's `-hf` default first). */
export const DEFAULT_QUANT_PREFERENCE = ["Q4_K_M", "Q4_K_S", "Q4_0", "Q5_K_M", "Q8_0", "F16"] as const;
