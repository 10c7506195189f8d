/**
 * Focus compared like with like. Focus varies along z by nature (a bead stack spans 0.002-0.04 in
 * DCTS), so a stack is never compared with a mean over other planes: each plane keeps its own recent
 * history, and a stack's relative focus is its best measured plane over the best baseline of the
 * same planes. Planes missing from a stack (QC sampled, frames lost) are left out on both sides.
 * Stacks below the alert level do not enter the baseline: a defocus cannot become the new normal
 * while it lasts (a new acquisition starts a new baseline).
 */

/** Stacks of history each plane keeps (its baseline is their median). */
export const FOCUS_BASELINE_STACKS = 32;
/** History a plane needs before it is compared. */
export const FOCUS_MIN_HISTORY = 3;

export class FocusBaseline {
  private readonly history = new Map<number, number[]>();

  /** `lowRatio`: stacks whose relative focus is below it are kept out of the baseline. */
  constructor(private readonly lowRatio: () => number) {}

  /** Relative focus of a completed stack (plane z -> focus value), or null while there is no baseline. */
  closeStack(planes: Map<number, number>): number | null {
    let best = -Infinity;
    let baseBest = -Infinity;
    for (const [z, v] of planes) {
      const h = this.history.get(z);
      if (!h || h.length < FOCUS_MIN_HISTORY || !Number.isFinite(v)) continue;
      best = Math.max(best, v);
      baseBest = Math.max(baseBest, median(h));
    }
    const ratio = baseBest > 0 && Number.isFinite(best) ? best / baseBest : null;
    if (ratio === null || ratio >= this.lowRatio()) {
      for (const [z, v] of planes) {
        if (!Number.isFinite(v)) continue;
        let h = this.history.get(z);
        if (!h) this.history.set(z, (h = []));
        h.push(v);
        if (h.length > FOCUS_BASELINE_STACKS) h.shift();
      }
    }
    return ratio;
  }

  clear(): void {
    this.history.clear();
  }
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
