/**
 * Short names that pull from the hub when nothing local answers to them, as `ollama run NAME` does.
 * Kept to models whose hub location is stable.
 */
export const CATALOG: Record<string, string> = {
  stories260K: "hf:ggml-org/models/tinyllamas/stories260K.gguf",
};
