// RoPE in place on rows of heads, as the scalar twin's rope: each rotated pair (x0, x1) becomes
// (f32(x0·cos) − f32(x1·sin), f32(x0·sin) + f32(x1·cos)), in f32 with no fused steps.

/**
 * Rotates `rows` rows of `headDim` at x (row r belongs to token r / heads) by their token's `half` cos and
 * sin values (tables of [tokens, half] at cos and sin): pairs (2i, 2i + 1) in the normal ordering, (i,
 * i + half) in NeoX's. Dimensions past 2·half stay as they are.
 */
export function rope_rows(x: usize, rows: i32, heads: i32, headDim: i32, half: i32, cos: usize, sin: usize, neox: bool): void {
  for (let r = 0; r < rows; r++) ropeRow(x + (<usize>(r * headDim) << 2), cos + (<usize>((r / heads) * half) << 2), sin + (<usize>((r / heads) * half) << 2), half, neox);
}

/**
 * rope_rows as a range kernel, rows first … end − 1 of those at x: `cos` and `sin` the tables, `heads` the
 * rows a token, and `halfNeox` half plus 2^16 in NeoX's ordering.
 */
export function rope_range(cos: usize, first: i32, end: i32, x: usize, headDim: i32, sin: usize, heads: i32, halfNeox: i32, _part: i32): void {
  const half = halfNeox & 0xffff;
  const neox = (halfNeox >> 16) != 0;
  for (let r = first; r < end; r++) ropeRow(x + (<usize>(r * headDim) << 2), cos + (<usize>((r / heads) * half) << 2), sin + (<usize>((r / heads) * half) << 2), half, neox);
}

/** One row at `row` rotated by the `half` cos and sin values at c and s. */
// @ts-ignore: decorator
@inline function ropeRow(row: usize, c: usize, s: usize, half: i32, neox: bool): void {
  const quads = half & ~3;
  let i = 0;
  for (; i < quads; i += 4) {
    const cv = v128.load(c + (<usize>i << 2));
    const sv = v128.load(s + (<usize>i << 2));
    if (neox) {
      const p0 = row + (<usize>i << 2);
      const p1 = row + (<usize>(i + half) << 2);
      const x0 = v128.load(p0);
      const x1 = v128.load(p1);
      v128.store(p0, f32x4.sub(f32x4.mul(x0, cv), f32x4.mul(x1, sv)));
      v128.store(p1, f32x4.add(f32x4.mul(x0, sv), f32x4.mul(x1, cv)));
    } else {
      const p = row + (<usize>(2 * i) << 2);
      const a = v128.load(p);
      const b = v128.load(p, 16);
      const x0 = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
      const x1 = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
      const y0 = f32x4.sub(f32x4.mul(x0, cv), f32x4.mul(x1, sv));
      const y1 = f32x4.add(f32x4.mul(x0, sv), f32x4.mul(x1, cv));
      v128.store(p, v128.shuffle<f32>(y0, y1, 0, 4, 1, 5));
      v128.store(p, v128.shuffle<f32>(y0, y1, 2, 6, 3, 7), 16);
    }
  }
  for (; i < half; i++) {
    const p0 = row + (<usize>(neox ? i : 2 * i) << 2);
    const p1 = p0 + (<usize>(neox ? half : 1) << 2);
    const x0 = load<f32>(p0);
    const x1 = load<f32>(p1);
    const cv = load<f32>(c + (<usize>i << 2));
    const sv = load<f32>(s + (<usize>i << 2));
    store<f32>(p0, x0 * cv - x1 * sv);
    store<f32>(p1, x0 * sv + x1 * cv);
  }
}
