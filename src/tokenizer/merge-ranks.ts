/**
 * BPE merge ranks by pair of pieces, as llama.cpp's bpe_ranks: each merge "left right" is split at its
 * first space after the first character, and the first of equal pairs keeps its rank. Pairs of
 * vocabulary pieces are held as ids in typed arrays (an open-addressed table of ranks and the pairs by
 * rank): a 128K vocabulary's 280K merges took about 20 MB as a Map of strings, and about 4 MB here.
 */
export class MergeRanks {
  /** Rank of the pair hashed to each slot, −1 where empty (linear probing). */
  private readonly slots: Int32Array;
  /** left id, right id of each rank's pair (−1 for merges kept in `others`). */
  private readonly pairs: Int32Array;
  /** Merges with a part outside the vocabulary (rare), by left then right piece. */
  private readonly others = new Map<string, Map<string, number>>();

  constructor(
    merges: readonly string[],
    private readonly pieceToId: ReadonlyMap<string, number>,
  ) {
    let capacity = 1024;
    while (capacity < merges.length * 1.5) capacity *= 2;
    this.slots = new Int32Array(capacity).fill(-1);
    this.pairs = new Int32Array(2 * merges.length).fill(-1);
    merges.forEach((merge, rank) => {
      const space = merge.indexOf(" ", 1);
      const left = space === -1 ? "" : merge.slice(0, space);
      const right = space === -1 ? "" : merge.slice(space + 1);
      const leftId = pieceToId.get(left);
      const rightId = pieceToId.get(right);
      if (leftId === undefined || rightId === undefined) {
        let byRight = this.others.get(left);
        if (!byRight) this.others.set(left, (byRight = new Map()));
        if (!byRight.has(right)) byRight.set(right, rank);
        return;
      }
      let slot = this.home(leftId, rightId);
      for (; this.slots[slot] !== -1; slot = (slot + 1) & (capacity - 1)) {
        if (this.holds(slot, leftId, rightId)) return;
      }
      this.slots[slot] = rank;
      this.pairs[2 * rank] = leftId;
      this.pairs[2 * rank + 1] = rightId;
    });
  }

  /** The rank of merging `left` and `right`, or undefined where no merge joins them. */
  rank(left: string, right: string): number | undefined {
    const leftId = this.pieceToId.get(left);
    const rightId = this.pieceToId.get(right);
    if (leftId === undefined || rightId === undefined) return this.others.get(left)?.get(right);
    for (let slot = this.home(leftId, rightId); this.slots[slot] !== -1; slot = (slot + 1) & (this.slots.length - 1)) {
      if (this.holds(slot, leftId, rightId)) return this.slots[slot];
    }
    return undefined;
  }

  private home(leftId: number, rightId: number): number {
    return ((Math.imul(leftId, 0x9e3779b1) ^ Math.imul(rightId + 1, 0x85ebca77)) >>> 7) & (this.slots.length - 1);
  }

  private holds(slot: number, leftId: number, rightId: number): boolean {
    const rank = this.slots[slot];
    return this.pairs[2 * rank] === leftId && this.pairs[2 * rank + 1] === rightId;
  }
}
