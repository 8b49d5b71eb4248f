import { GgufFile } from "./dist/src/gguf/index.js";
import { WeightSource } from "./dist/src/models/weights.js";
import { WasmBackend } from "./dist/src/backend/wasm/wasm-backend.js";
const file = GgufFile.open(process.argv[2]);
const ws = new WeightSource(file);
const be = new WasmBackend(2);
for (const name of process.argv.slice(3)) {
  const w = ws.require(name);
  const x = new Float32Array(w.cols).map(() => Math.random() - 0.5);
  be.matmul(w, x, 1);
  const n = 20; const t0 = performance.now();
  for (let i = 0; i < n; i++) be.matmul(w, x, 1);
  const ms = (performance.now() - t0) / n;
  console.log(name, w.typeName, w.dims.join("x"), ms.toFixed(2), "ms", (w.byteLength / ms / 1e6).toFixed(1), "GB/s");
}
be.dispose(); file.close();
