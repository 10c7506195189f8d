/**
 * One pass over the frame: full-resolution histogram (exact percentiles), checksum, min/max/mean.
 * Written for the JIT: one typed-array loop, no allocation per frame beyond the reused histogram.
 */
import { HIST_BINS, type FrameStats } from '../../src/qc/qc-types.js';

let hist = new Uint32Array(65536);

export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;

/** FNV-1a over pixel values (one value per pixel, not per byte). Tests recompute it independently. */
export function checksumPixels(px: Uint16Array | Uint8Array): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < px.length; i++) h = Math.imul(h ^ px[i], FNV_PRIME);
  return h >>> 0;
}

export function frameStats(px: Uint16Array | Uint8Array, saturationLevel: number, offset: number): FrameStats {
  const n = px.length;
  if (hist.length < 65536) hist = new Uint32Array(65536);
  hist.fill(0);
  let h = FNV_OFFSET;
  for (let i = 0; i < n; i++) {
    const v = px[i];
    hist[v]++;
    h = Math.imul(h ^ v, FNV_PRIME);
  }
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
  const compact = new Array<number>(HIST_BINS).fill(0);
  const binScale = HIST_BINS / (saturationLevel + 1);
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
    const b = Math.min(HIST_BINS - 1, Math.floor(v * binScale));
    compact[b] += c;
  }
  return {
    checksum: h >>> 0,
    min: Math.max(min, 0),
    max,
    mean: n > 0 ? sum / n : 0,
    saturatedRatio: n > 0 ? saturated / n : 0,
    underexposedRatio: n > 0 ? under / n : 0,
    p001,
    p50,
    p999,
    histogram: compact,
  };
}
