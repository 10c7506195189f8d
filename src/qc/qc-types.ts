/** Results of the per-frame and per-stack QC kernels (small, plain data: they cross threads). */

export interface FrameStats {
  /** FNV-1a over pixel values (see workers/kernels/stats.ts), 0 unless `qc.checksum` is on. */
  checksum: number;
  min: number;
  max: number;
  mean: number;
  /** Fraction of pixels >= the saturation level. */
  saturatedRatio: number;
  /** Fraction of pixels <= the camera offset. */
  underexposedRatio: number;
  /** 0.1, 50 and 99.9 percentiles (exact, from the full histogram; nearest-rank). */
  p001: number;
  p50: number;
  p999: number;
  /** Compact histogram for the page: HIST_BINS equal bins spanning [histogramLo, histogramHi). */
  histogram: number[];
  histogramLo: number;
  histogramHi: number;
}

export interface DriftResult {
  dx: number;
  dy: number;
  /** Peak-to-sidelobe ratio of the correlation peak; below the config minimum the shift is not reported. */
  confidence: number;
  valid: boolean;
  /** Why the shift is not reported although measured: the plane was saturated or its intensity jumped (baselines.ts). */
  excluded?: ExcludedReason;
}

/** Why a frame or stack is kept out of the QC baselines and not judged against them. */
export type ExcludedReason = 'saturated' | 'intensity-step';

export interface FrameQc extends FrameStats {
  /** Focus measures by name (dcts, tenengrad, laplacian_variance, brenner). Higher = sharper. */
  focus: Record<string, number>;
  drift: DriftResult | null;
  /** Mean signal above offset (ADU). */
  signal: number;
  /** True when focus and drift were skipped because the workers were behind (storage comes first). */
  sampled: boolean;
  /** signal / sqrt(signal/gain + background variance): a simple SNR estimate. */
  snr: number;
}

export interface StackQc {
  planes: number;
  /** Planes whose focus was measured (fewer than `planes` when QC was sampled). */
  focusPlanes: number;
  bestFocusZ: number;
  meanFocus: number;
  maxSaturatedRatio: number;
  meanSignal: number;
  /** Best measured plane's focus over the best baseline of the same planes (null: no baseline yet, or excluded). */
  focusRelative: number | null;
  /** Kept out of the baselines and not judged (null: a normal stack). */
  excluded: ExcludedReason | null;
}

/**
 * Whether a stack's mean focus may go on a focus plot. Focus varies along z by nature, so the mean of
 * a partly sampled stack (some planes skipped while the workers were behind) is over other planes
 * than its neighbours' and would show as a jump; an excluded stack (saturated, intensity step) says
 * nothing about focus either. The page (web/app.js) applies the same rule.
 */
export function focusPlottable(q: StackQc): boolean {
  return q.planes > 0 && q.focusPlanes === q.planes && q.excluded === null;
}

export const HIST_BINS = 128;
