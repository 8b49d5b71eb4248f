/**
 * ggml tensor type ids with their block geometry. This is file-format knowledge (how many bytes
 * a tensor occupies), so it lives beside the reader; the arithmetic for each type lives in quant/.
 */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

export interface BlockGeometry {
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const GEOMETRY: ReadonlyMap<GgmlType, BlockGeometry> = new Map([
  [GgmlType.F32, { blockSize: 1, typeSize: 4 }],
  [GgmlType.F16, { blockSize: 1, typeSize: 2 }],
  [GgmlType.BF16, { blockSize: 1, typeSize: 2 }],
  [GgmlType.F64, { blockSize: 1, typeSize: 8 }],
  [GgmlType.I8, { blockSize: 1, typeSize: 1 }],
  [GgmlType.I16, { blockSize: 1, typeSize: 2 }],
  [GgmlType.I32, { blockSize: 1, typeSize: 4 }],
  [GgmlType.I64, { blockSize: 1, typeSize: 8 }],
  [GgmlType.Q4_0, { blockSize: 32, typeSize: 18 }],
  [GgmlType.Q4_1, { blockSize: 32, typeSize: 20 }],
  [GgmlType.Q5_0, { blockSize: 32, typeSize: 22 }],
  [GgmlType.Q5_1, { blockSize: 32, typeSize: 24 }],
  [GgmlType.Q8_0, { blockSize: 32, typeSize: 34 }],
  [GgmlType.Q8_1, { blockSize: 32, typeSize: 36 }],
  [GgmlType.Q2_K, { blockSize: 256, typeSize: 84 }],
  [GgmlType.Q3_K, { blockSize: 256, typeSize: 110 }],
  [GgmlType.Q4_K, { blockSize: 256, typeSize: 144 }],
  [GgmlType.Q5_K, { blockSize: 256, typeSize: 176 }],
  [GgmlType.Q6_K, { blockSize: 256, typeSize: 210 }],
  [GgmlType.Q8_K, { blockSize: 256, typeSize: 292 }],
  [GgmlType.IQ2_XXS, { blockSize: 256, typeSize: 66 }],
  [GgmlType.IQ2_XS, { blockSize: 256, typeSize: 74 }],
  [GgmlType.IQ3_XXS, { blockSize: 256, typeSize: 98 }],
  [GgmlType.IQ1_S, { blockSize: 256, typeSize: 50 }],
  [GgmlType.IQ4_NL, { blockSize: 32, typeSize: 18 }],
  [GgmlType.IQ3_S, { blockSize: 256, typeSize: 110 }],
  [GgmlType.IQ2_S, { blockSize: 256, typeSize: 82 }],
  [GgmlType.IQ4_XS, { blockSize: 256, typeSize: 136 }],
  [GgmlType.IQ1_M, { blockSize: 256, typeSize: 56 }],
  [GgmlType.TQ1_0, { blockSize: 256, typeSize: 54 }],
  [GgmlType.TQ2_0, { blockSize: 256, typeSize: 66 }],
  [GgmlType.MXFP4, { blockSize: 32, typeSize: 17 }],
]);

export function blockGeometry(type: number): BlockGeometry | undefined {
  return GEOMETRY.get(type as GgmlType);
}

export function ggmlTypeName(type: number): string {
  return GgmlType[type] ?? `type#${type}`;
}

export function ggmlTypeFromName(name: string): GgmlType | undefined {
  const id = (GgmlType as unknown as Record<string, number | undefined>)[name.toUpperCase()];
  return typeof id === "number" ? (id as GgmlType) : undefined;
}
