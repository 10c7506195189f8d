/**
 * Per-frame job: QC metrics on the frame in the pool and, for a stored frame, its write into the
 * z-block being assembled (chunk-major, in the same pass as the histogram). Focus runs on a centred
 * (or configured) ROI of at most 512 px, binned to <= 128 px; drift on a centred `drift_window`
 * region (binned by `drift_bin`) of the planes the main thread picks.
 */
import { clearedHistogram, histogram, statsFromHistogram } from './kernels/stats.js';
import { histogramToTiles } from './kernels/tiles.js';
import { binMaxPlaneSimd, histogramRows, histogramToTilesSimd, simdApplies } from './kernels/tiles-simd.js';
import { focusMeasures } from './kernels/focus.js';
import { phaseCorrelate, spectrum } from './kernels/drift.js';
import { binRegion, centredRegion } from './kernels/roi.js';
import { binFloat, cropMasked, median3x3 } from './kernels/despeckle.js';
import { accumulateMip, binMaxPlane } from './kernels/preview.js';
import { combinePair, halfOf, reducePlane } from './kernels/pyramid.js';
import type { DriftResult, FrameQc } from '../src/qc/qc-types.js';
import type { FrameResult, FrameTask } from './tasks.js';

const FOCUS_MAX_ROI = 512;
const FOCUS_TARGET = 128;
/** A sampled frame's intensity, saturation and percentiles come from every 4th row (1 M of 4 M px at 2048²). */
const SAMPLED_HISTOGRAM_EVERY = 4;
/** Drift: a pixel this many camera-noise sigmas from its 3 x 3 median is an outlier (hot, saturated). */
const OUTLIER_SIGMAS = 5;
let focusImg = new Float64Array(0);
let driftImg = new Float64Array(0);
let driftFull = new Float64Array(0);
let spec = new Float64Array(0);

const volumeBins = (w: number, h: number, step: number) => Math.ceil(w / step) * Math.ceil(h / step);

export function runFrameTask(t: FrameTask): FrameResult {
  const t0 = performance.now();
  const n = t.width * t.height;
  const px = t.bytesPerPixel === 2 ? new Uint16Array(t.frames, t.frameOffset, n) : new Uint8Array(t.frames, t.frameOffset, n);
  // The histogram pass also writes the frame into its z-block when it is stored (one read of the frame).
  let hist: Uint32Array;
  let counted = n;
  const method = t.store?.downsample ?? 'mean';
  const n2 = halfOf(t.width) * halfOf(t.height);
  const ext = t.store?.ext ? new Uint32Array(t.store.ext, t.store.z * n2 * 4, n2) : null;
  let reduced = false;
  let volumeDone = false;
  if (t.store?.simd && !ext && simdApplies(px, t.store.geometry)) {
    // The default storing path (uint16, Blosc, no pyramid): the SIMD kernel, 2.4x the JS pass. When
    // QC is sampled (workers behind), the histogram takes every 4th row: storing comes before QC.
    const every = t.sampled ? SAMPLED_HISTOGRAM_EVERY : 1;
    // The live volume's plane rides in the same strips: the frame is read once for all three.
    const v = t.volume;
    const volume = v ? { step: v.step, out: new Uint16Array(v.buffer, v.offset * 2, volumeBins(t.width, t.height, v.step)) } : null;
    hist = histogramToTilesSimd(px, t.store.block, t.store.z, t.store.geometry, new Uint8Array(t.store.nonZero), every, volume);
    volumeDone = volume !== null;
    counted = histogramRows(t.height, every) * t.width;
  } else {
    hist = clearedHistogram();
    if (t.store)
      reduced = histogramToTiles(
        px,
        hist,
        t.store.block,
        t.store.z,
        t.store.geometry,
        new Uint8Array(t.store.nonZero),
        method === 'mean' ? ext : null,
      );
    else histogram(px, hist);
  }
  if (t.store && ext) {
    // The pyramid's first step: the mean's 2 x 2 sums ride in the pass above where it can; else its own pass.
    if (!reduced) reducePlane(px, t.width, t.height, method, ext);
    // A previewed frame: its level-1 plane (the in-plane step of level 1, same kernel) is the live view.
    if (t.store.levelOut) combinePair(ext, null, false, t.width, t.height, method, new Uint16Array(t.store.levelOut, 0, n2));
  }
  const stats = statsFromHistogram(px, hist, t.saturationLevel, t.offset, t.qc.checksum, counted);
  if (t.mip) accumulateMip(px, t.width, t.height, t.mipStep, new Uint16Array(t.mip));
  if (t.volume && !volumeDone) {
    const v = t.volume;
    const out = new Uint16Array(v.buffer, v.offset * 2, volumeBins(t.width, t.height, v.step));
    if (!(px instanceof Uint16Array && binMaxPlaneSimd(px, t.width, t.height, { step: v.step, out })))
      binMaxPlane(px, t.width, t.height, v.step, out);
  }
  const q = t.qc;
  let focus: Record<string, number> = {};
  if (q.focus.length > 0 && !t.sampled) {
    const r = centredRegion(t.width, t.height, FOCUS_MAX_ROI, q.roi);
    const bin = q.focusBin > 0 ? q.focusBin : Math.max(1, Math.floor(Math.max(r.w, r.h) / FOCUS_TARGET));
    const bw = Math.floor(r.w / bin);
    const bh = Math.floor(r.h / bin);
    if (focusImg.length < bw * bh) focusImg = new Float64Array(bw * bh);
    binRegion(px, t.width, r, bin, focusImg);
    focus = focusMeasures(focusImg.subarray(0, bw * bh), bw, bh, q.focus, q.dctsPsfPx / bin);
  }
  let drift: DriftResult | null = null;
  let newReference: SharedArrayBuffer | null = null;
  if (t.drift && !t.sampled) {
    const bin = Math.max(1, q.driftBin);
    const r = centredRegion(t.width, t.height, q.driftWindow * bin, []);
    const bw = Math.floor(r.w / bin);
    const bh = Math.floor(r.h / bin);
    if (bw >= 8 && bh >= 8) {
      if (driftImg.length < bw * bh) driftImg = new Float64Array(bw * bh);
      if (spec.length < 2 * bw * bh) spec = new Float64Array(2 * bw * bh);
      // Hot and saturated pixels must not drive the peak: mask saturation, then a 3 x 3 median.
      if (bin > 1 && driftFull.length < r.w * r.h) driftFull = new Float64Array(r.w * r.h);
      const full = bin === 1 ? driftImg : driftFull;
      cropMasked(px, t.width, r.x, r.y, r.w, r.h, t.saturationLevel, stats.p50, full);
      median3x3(full, r.w, r.h, OUTLIER_SIGMAS, t.offset, q.gain, q.readNoise);
      if (bin > 1) binFloat(full, r.w, r.h, bin, driftImg);
      const s = spectrum(driftImg.subarray(0, bw * bh), bw, bh, spec.subarray(0, 2 * bw * bh));
      if (t.driftReference && t.driftReference.byteLength === s.byteLength) {
        const d = phaseCorrelate(s, new Float64Array(t.driftReference), bw, bh, q.driftUpsample, q.driftMinConfidence);
        drift = { ...d, dx: d.dx * bin, dy: d.dy * bin };
      }
      if (!t.driftReference || t.driftRefreshReference) {
        newReference = new SharedArrayBuffer(s.byteLength);
        new Float64Array(newReference).set(s);
      }
    }
  }
  const signal = Math.max(0, stats.mean - t.offset);
  // Simple SNR: bright signal above the background median, over the background's shot + read noise.
  const bgNoise = Math.sqrt(Math.max(0, stats.p50 - t.offset) / q.gain + q.readNoise * q.readNoise);
  const snr = bgNoise > 0 ? (stats.p999 - stats.p50) / bgNoise : 0;
  const qc: FrameQc = { ...stats, focus, drift, sampled: t.sampled, signal, snr };
  return { qc, newReference, seconds: (performance.now() - t0) / 1000 };
}

/**
 * QC of one frame outside the pipeline (calibration replays, the accuracy tests): the same task the
 * workers run, without storing, preview or MIP. `driftReference` from an earlier call's result.
 */
export function measureFrame(
  px: Uint16Array | Uint8Array,
  width: number,
  height: number,
  o: {
    qc: FrameTask['qc'];
    saturationLevel: number;
    offset: number;
    drift?: boolean;
    driftReference?: SharedArrayBuffer | null;
  },
): FrameResult {
  const frames = new SharedArrayBuffer(px.byteLength);
  new Uint8Array(frames).set(new Uint8Array(px.buffer, px.byteOffset, px.byteLength));
  return runFrameTask({
    kind: 'frame',
    frames,
    frameOffset: 0,
    width,
    height,
    bytesPerPixel: px.BYTES_PER_ELEMENT,
    saturationLevel: o.saturationLevel,
    offset: o.offset,
    qc: o.qc,
    sampled: false,
    drift: o.drift ?? false,
    driftReference: o.driftReference ?? null,
    driftRefreshReference: false,
    mip: null,
    mipStep: 1,
    store: null,
  });
}
