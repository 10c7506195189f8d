/**
 * One pass over the frame: full-resolution histogram (exact percentiles), checksum, min/max/mean.
 * Written for the JIT: one typed-array loop, no allocation per frame beyond the reused histogram.
 */
import { HIST_BINS, type FrameStats } from '../../src/qc/qc-types.js';

const HIST = new Uint32Array(65536);

export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;

/** FNV-1a over pixel values (one value per pixel, not per byte). Tests recompute it independently. */
export function checksumPixels(px: Uint16Array | Uint8Array): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < px.length; i++) h = Math.imul(h ^ px[i], FNV_PRIME);
  return h >>> 0;
}

/** The module's histogram table (65536 bins, reused per frame), zeroed. */
export function clearedHistogram(): Uint32Array {
  HIST.fill(0);
  return HIST;
}

/** Adds every sample of px into hist. */
export function histogram(px: Uint16Array | Uint8Array, hist: Uint32Array): void {
  const n = px.length;
  if (px instanceof Uint16Array && px.byteOffset % 4 === 0) {
    // Two pixels per 32-bit load: ~2x the per-pixel loop on SharedArrayBuffer-backed frames.
    const words = new Uint32Array(px.buffer, px.byteOffset, n >> 1);
    const len = words.length;
    for (let i = 0; i < len; i++) {
      const w = words[i];
      hist[w & 0xffff]++;
      hist[w >>> 16]++;
    }
    if (n & 1) hist[px[n - 1]]++;
  } else {
    for (let i = 0; i < n; i++) hist[px[i]]++;
  }
}

/**
 * `withChecksum` adds the FNV-1a checksum; it is a serial dependency chain (~2.5 ns/pixel, 4x the
 * histogram itself), so it is off by default (`qc.checksum`) and on where tests prove delivery.
 */
export function frameStats(px: Uint16Array | Uint8Array, saturationLevel: number, offset: number, withChecksum = true): FrameStats {
  const hist = clearedHistogram();
  histogram(px, hist);
  return statsFromHistogram(px, hist, saturationLevel, offset, withChecksum);
}

/**
 * Everything the QC reports from a frame's filled histogram (px is read again only for the checksum).
 * `counted`: the samples in the histogram when it holds a subset of the frame's rows (sampled QC).
 */
export function statsFromHistogram(
  px: Uint16Array | Uint8Array,
  hist: Uint32Array,
  saturationLevel: number,
  offset: number,
  withChecksum: boolean,
  counted = px.length,
): FrameStats {
  const n = counted;
  const h = withChecksum ? checksumPixels(px) : 0;
  let min = -1;
  let max = 0;
  let sum = 0;
  let saturated = 0;
  let under = 0;
  const top = px instanceof Uint8Array ? 255 : 65535;
  const r001 = Math.max(1, Math.ceil(0.001 * n));
  const r50 = Math.max(1, Math.ceil(0.5 * n));
  const r999 = Math.max(1, Math.ceil(0.999 * n));
  let p001 = 0;
  let p50 = 0;
  let p999 = 0;
  let cum = 0;
  for (let v = 0; v <= top; v++) {
    const c = hist[v];
    if (c === 0) continue;
    if (min < 0) min = v;
    max = v;
    sum += c * v;
    if (v >= saturationLevel) saturated += c;
    if (v <= offset) under += c;
    const prev = cum;
    cum += c;
    if (prev < r001 && cum >= r001) p001 = v;
    if (prev < r50 && cum >= r50) p50 = v;
    if (prev < r999 && cum >= r999) p999 = v;
  }
  // The page's histogram spans what the frame holds [min, max]: a 16-bit range would squeeze a
  // low-signal frame into one bin. The page marks the saturation level against this range.
  const lo = Math.max(min, 0);
  const span = max - lo + 1;
  const compact = new Array<number>(HIST_BINS).fill(0);
  for (let v = lo; v <= max; v++) {
    const c = hist[v];
    if (c !== 0) compact[Math.min(HIST_BINS - 1, Math.floor(((v - lo) * HIST_BINS) / span))] += c;
  }
  return {
    checksum: h,
    min: Math.max(min, 0),
    max,
    mean: n > 0 ? sum / n : 0,
    saturatedRatio: n > 0 ? saturated / n : 0,
    underexposedRatio: n > 0 ? under / n : 0,
    p001,
    p50,
    p999,
    histogram: compact,
    histogramLo: lo,
    histogramHi: max + 1,
  };
}
