/**
 * Which measurements may enter the QC baselines and be judged against them. A saturated plane or
 * stack (above qc.thresholds.saturated_ratio), or one whose mean signal jumped by more than
 * qc.intensity_step_factor from its baseline (a laser power or exposure change), says nothing about
 * focus or drift: its focus would inflate the focus baseline (and every normal stack after the
 * episode would then look defocused), and a clipped plane shifts the phase correlation. Such
 * measurements are kept out and reported as not judged; a deliberate change is accepted with
 * POST /api/rebaseline (the page's "accept as new baseline"), after which baselines start again.
 */
import type { ExcludedReason } from './qc-types.js';

export interface GateLimits {
  saturatedRatio: number;
  intensityStep: number;
}

/** Null when the measurement may be judged and enter the baseline, else why not. */
export function excluded(saturatedRatio: number, signal: number, baselineSignal: number | null, lim: GateLimits): ExcludedReason | null {
  if (saturatedRatio > lim.saturatedRatio) return 'saturated';
  if (baselineSignal !== null && baselineSignal > 0 && signal > 0) {
    const r = signal / baselineSignal;
    if (r > lim.intensityStep || r < 1 / lim.intensityStep) return 'intensity-step';
  }
  return null;
}

/** A stream's signal baseline: the median of its last accepted stacks (follows slow bleaching). */
export class SignalBaseline {
  private readonly v: number[] = [];

  constructor(private readonly keep = 8) {}

  get(): number | null {
    if (this.v.length === 0) return null;
    const s = [...this.v].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  add(signal: number): void {
    if (!(signal > 0)) return;
    this.v.push(signal);
    if (this.v.length > this.keep) this.v.shift();
  }

  clear(): void {
    this.v.length = 0;
  }
}
