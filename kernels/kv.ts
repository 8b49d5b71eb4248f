// KV cache rows written from f32: F16 as the scalar twin's floatToHalf rounds (a Q8_0 cache takes quantize_q8_0).

import { floatToHalf, halfBits4 } from "./half";

/** n f32 at src → n F16 at dst (round to nearest even; infinities and NaN as floatToHalf gives them). */
export function halves_from_floats(src: usize, dst: usize, n: i32): void {
  const count = <usize>n;
  let i: usize = 0;
  for (; i + 8 <= count; i += 8) {
    const low = halfBits4(v128.load(src + (i << 2)));
    const high = halfBits4(v128.load(src + (i << 2), 16));
    v128.store(dst + (i << 1), i16x8.narrow_i32x4_u(low, high));
  }
  for (; i < count; i++) store<u16>(dst + (i << 1), <u16>floatToHalf(load<f32>(src + (i << 2))));
}

/**
 * halves_from_floats as a range kernel: unit i writes `n` floats from the address in word 2i of `table`
 * to the cache row at the address in word 2i + 1 (a decode step's K and V rows, whatever cache each goes to).
 */
export function store_halves_range(table: usize, first: i32, end: i32, _a: i32, n: i32, _o: i32, _t: i32, _s: i32, _part: i32): void {
  for (let i = first; i < end; i++) {
    const at = table + (<usize>i << 3);
    halves_from_floats(<usize>load<u32>(at), <usize>load<u32>(at, 4), n);
  }
}
