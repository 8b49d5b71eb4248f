// A list of range-kernel calls that every thread runs together: each stage's units are claimed in chunks
// from a counter of its own, and a stage can end with a barrier, so that the next reads what every thread
// wrote. One dispatch from the host then covers a whole feed-forward layer of a decode step, where one
// dispatch a kernel cost more host time (each with its setup, and its wait for the slower thread) than
// the small kernels themselves.
//
// Program layout (i32 words): [stage count, barrier counter, then STAGE_WORDS a stage]. The host zeroes
// the counters before each run.

import { add_rows_range, gelu_mul_range, scale_range, silu_mul_range } from "./activation";
import { attend_range } from "./attention";
import { store_halves_range } from "./kv";
import { rope_range } from "./rope";
import { gemm_q4_0x16, gemm_q4_kx8, gemm_q6_kx4, quantize_q8_0_record_blocks } from "./interleaved";
import { quantize_q8_k_blocks } from "./matvec";
import { rms_norm_rows } from "./norm";
import { gemm_q8_0x16, quantize_q8_0_split_blocks } from "./q8_0";

const STAGE_WORDS = 12;
const S_KERNEL = 0, S_WEIGHTS = 1, S_ACTIVATIONS = 2, S_N = 3, S_OUT = 4, S_TOKENS = 5, S_OUT_STRIDE = 6;
const S_UNITS = 7, S_CHUNK = 8, S_COUNTER = 9, S_BARRIER = 10;

/**
 * Kernel codes: their indices in KERNEL_NAMES (src/backend/wasm/kernels.ts), which the host writes. Only
 * the kernels of a decoder layer (norms, products, attention, scaling, residual adds) can run as a stage.
 */
const GEMM_Q8_0X16 = 9, GEMM_Q4_0X16 = 10, GEMM_Q4_KX8 = 11, GEMM_Q6_KX4 = 12;
const ATTEND = 16, RMS_NORM = 17, QUANTIZE_Q8_K = 18, QUANTIZE_Q8_0_SPLIT = 19, QUANTIZE_Q8_0_RECORDS = 20;
const GELU_MUL = 21, SILU_MUL = 23, ROPE = 25, STORE_HALVES = 26, ADD_ROWS = 27, SCALE = 28;

// @ts-ignore: decorator
@inline function word(at: usize, index: i32): i32 {
  return load<i32>(at + (<usize>index << 2));
}

function callStage(stage: usize, first: i32, end: i32, part: i32): void {
  const weights = <usize>word(stage, S_WEIGHTS);
  const activations = <usize>word(stage, S_ACTIVATIONS);
  const n = word(stage, S_N);
  const out = <usize>word(stage, S_OUT);
  const tokens = word(stage, S_TOKENS);
  const outStride = word(stage, S_OUT_STRIDE);
  switch (word(stage, S_KERNEL)) {
    case GEMM_Q8_0X16: gemm_q8_0x16(weights, first, end, activations, n, out, tokens, outStride); break;
    case GEMM_Q4_0X16: gemm_q4_0x16(weights, first, end, activations, n, out, tokens, outStride, part); break;
    case GEMM_Q4_KX8: gemm_q4_kx8(weights, first, end, activations, n, out, tokens, outStride); break;
    case GEMM_Q6_KX4: gemm_q6_kx4(weights, first, end, activations, n, out, tokens, outStride, part); break;
    case QUANTIZE_Q8_K: quantize_q8_k_blocks(weights, first, end, activations, n, out, tokens, outStride); break;
    case QUANTIZE_Q8_0_SPLIT: quantize_q8_0_split_blocks(weights, first, end, activations, n, out, tokens, outStride); break;
    case QUANTIZE_Q8_0_RECORDS: quantize_q8_0_record_blocks(weights, first, end, activations, n, out, tokens, outStride); break;
    case GELU_MUL: gelu_mul_range(weights, first, end, activations, n, out, tokens, outStride, part); break;
    case SILU_MUL: silu_mul_range(weights, first, end, activations, n, out, tokens, outStride, part); break;
    case ATTEND: attend_range(weights, first, end, activations, n, out, tokens, outStride, part); break;
    case ROPE: rope_range(weights, first, end, activations, n, out, tokens, outStride, part); break;
    case RMS_NORM: rms_norm_rows(weights, first, end, activations, n, out, tokens, outStride); break;
    case SCALE: scale_range(weights, first, end, activations, n, out, tokens, outStride, part); break;
    case ADD_ROWS: add_rows_range(weights, first, end, activations, n, out, tokens, outStride, part); break;
    case STORE_HALVES: store_halves_range(weights, first, end, activations, n, out, tokens, outStride, part); break;
    default: unreachable();
  }
}

/**
 * Runs the program at `program` as thread `part` of `threads` (the range-kernel signature: first = part,
 * end = threads). Every thread must call it once, at the same time: the barriers wait for all of them.
 */
export function run_stages(program: usize, part: i32, threads: i32, _a: i32, _n: i32, _o: i32, _t: i32, _s: i32, _part: i32): void {
  const count = word(program, 0);
  const barrier = program + 4;
  let passed = 0;
  for (let s = 0; s < count; s++) {
    const stage = program + 8 + (<usize>(s * STAGE_WORDS) << 2);
    const units = word(stage, S_UNITS);
    const chunk = word(stage, S_CHUNK);
    const counter = stage + (<usize>S_COUNTER << 2);
    for (;;) {
      const first = atomic.add<i32>(counter, 1) * chunk;
      if (first >= units) break;
      callStage(stage, first, min(units, first + chunk), part);
    }
    if (word(stage, S_BARRIER) != 0) {
      passed += threads;
      atomic.add<i32>(barrier, 1);
      while (atomic.load<i32>(barrier) < passed) {}
    }
  }
}
