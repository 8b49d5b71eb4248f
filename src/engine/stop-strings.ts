/**
 * Cuts generated text at the first stop string, holding back any tail that could still grow into one,
 * so that a streamed answer never shows part of a stop string.
 */
export class StopStringFilter {
  private text = "";
  private emitted = 0;
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Adds text; returns what can be shown now. */
  push(piece: string): string {
    if (this.stopped) return "";
    this.text += piece;
    let cut = -1;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, Math.max(0, this.emitted - stop.length + 1));
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.text.slice(this.emitted, Math.max(cut, this.emitted));
      this.emitted = cut;
      return out;
    }
    let safe = this.text.length;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, this.text.length); k > 0; k--) {
        if (this.text.endsWith(stop.slice(0, k))) {
          safe = Math.min(safe, this.text.length - k);
          break;
        }
      }
    }
    const out = this.text.slice(this.emitted, Math.max(safe, this.emitted));
    this.emitted = Math.max(safe, this.emitted);
    return out;
  }

  /** What was held back, once generation has ended without a stop. */
  flush(): string {
    if (this.stopped) return "";
    const out = this.text.slice(this.emitted);
    this.emitted = this.text.length;
    return out;
  }
}
