/**
 * Lateral drift by phase correlation (Guizar-Sicairos et al. 2008, as scikit-image's
 * phase_cross_correlation): cross-power spectrum of the Hann-windowed region against the reference,
 * integer peak of its inverse FFT, then a matrix-multiply DFT upsampled by `upsample` over a
 * 1.5 x 1.5 px neighbourhood. The shift comes from the unnormalized correlation (more robust in
 * noise than pure phase). The confidence comes from the whitened (phase) correlation at that peak:
 * its peak-to-sidelobe ratio is a z-score of the match against the noise floor, so it means the same
 * on a faint bead and a bright embryo (the unnormalized surface's PSR depends on how smooth the
 * specimen is: 3.4 for a real, exactly found shift). Below the configured minimum no shift is reported.
 */
import { fft2 } from './fft.js';
import type { DriftResult } from '../../src/qc/qc-types.js';

const hannCache = new Map<string, Float64Array>();

function hann2(w: number, h: number): Float64Array {
  const key = `${w}x${h}`;
  let win = hannCache.get(key);
  if (!win) {
    win = new Float64Array(w * h);
    for (let y = 0; y < h; y++) {
      const wy = 0.5 - 0.5 * Math.cos((2 * Math.PI * (y + 0.5)) / h);
      for (let x = 0; x < w; x++) win[y * w + x] = wy * (0.5 - 0.5 * Math.cos((2 * Math.PI * (x + 0.5)) / w));
    }
    hannCache.set(key, win);
  }
  return win;
}

/** Windowed spectrum of a (binned) region: returns [re..., im...] in one Float64Array of 2·w·h. */
export function spectrum(img: Float64Array, w: number, h: number, out: Float64Array): Float64Array {
  const n = w * h;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += img[i];
  mean /= n;
  const win = hann2(w, h);
  const re = out.subarray(0, n);
  const im = out.subarray(n, 2 * n);
  for (let i = 0; i < n; i++) re[i] = (img[i] - mean) * win[i];
  im.fill(0);
  fft2(re, im, w, h);
  return out;
}

let ccRe = new Float64Array(0);
let ccIm = new Float64Array(0);
let invRe = new Float64Array(0);
let invIm = new Float64Array(0);
let phRe = new Float64Array(0);
let phIm = new Float64Array(0);

/** Peak-to-sidelobe ratio of surface s at (px, py): the 3 x 3 maximum against the rest outside 11 x 11. */
function psrAt(sf: Float64Array, w: number, h: number, px: number, py: number): number {
  let peak = -Infinity;
  for (let dy = -1; dy <= 1; dy++) {
    for (let dx = -1; dx <= 1; dx++) peak = Math.max(peak, sf[((py + dy + h) % h) * w + ((px + dx + w) % w)]);
  }
  let s = 0;
  let s2 = 0;
  let m = 0;
  for (let y = 0; y < h; y++) {
    const dy = Math.min(Math.abs(y - py), h - Math.abs(y - py));
    for (let x = 0; x < w; x++) {
      const dx = Math.min(Math.abs(x - px), w - Math.abs(x - px));
      if (dx <= 5 && dy <= 5) continue;
      const v = sf[y * w + x];
      s += v;
      s2 += v * v;
      m++;
    }
  }
  const mean = m > 0 ? s / m : 0;
  const sd = m > 1 ? Math.sqrt(Math.max(0, s2 / m - mean * mean)) : 0;
  return sd > 0 ? (peak - mean) / sd : 0;
}

/** Shift of `cur` relative to `ref` (both from `spectrum`): positive dx = content moved right. */
export function phaseCorrelate(cur: Float64Array, ref: Float64Array, w: number, h: number, upsample: number, minConfidence: number): DriftResult {
  const n = w * h;
  if (ccRe.length < n) {
    ccRe = new Float64Array(n);
    ccIm = new Float64Array(n);
    invRe = new Float64Array(n);
    invIm = new Float64Array(n);
    phRe = new Float64Array(n);
    phIm = new Float64Array(n);
  }
  const rr = ccRe.subarray(0, n);
  const ri = ccIm.subarray(0, n);
  for (let i = 0; i < n; i++) {
    const ar = cur[i];
    const ai = cur[n + i];
    const br = ref[i];
    const bi = ref[n + i];
    rr[i] = ar * br + ai * bi;
    ri[i] = ai * br - ar * bi;
  }
  // Keep the cross-power spectrum for the upsampled refinement; invert copies (plain and whitened).
  const cr = invRe.subarray(0, n);
  const ci = invIm.subarray(0, n);
  const wr = phRe.subarray(0, n);
  const wi = phIm.subarray(0, n);
  cr.set(rr);
  ci.set(ri);
  for (let i = 0; i < n; i++) {
    const mag = Math.hypot(rr[i], ri[i]);
    const k = mag > 0 ? 1 / mag : 0;
    wr[i] = rr[i] * k;
    wi[i] = ri[i] * k;
  }
  fft2(cr, ci, w, h, true);
  fft2(wr, wi, w, h, true);
  let peak = -Infinity;
  let pi = 0;
  for (let i = 0; i < n; i++) {
    if (cr[i] > peak) {
      peak = cr[i];
      pi = i;
    }
  }
  const py = Math.floor(pi / w);
  const px = pi % w;
  const confidence = psrAt(wr, w, h, px, py);
  let sx = px > w / 2 ? px - w : px;
  let sy = py > h / 2 ? py - h : py;
  if (!(confidence >= minConfidence) || !Number.isFinite(confidence)) {
    return { dx: 0, dy: 0, confidence: Number.isFinite(confidence) ? confidence : 0, valid: false };
  }
  if (upsample > 1) [sx, sy] = refine(rr, ri, w, h, sx, sy, upsample);
  return { dx: sx, dy: sy, confidence, valid: true };
}

/** Upsampled DFT of the cross-power spectrum around (sx, sy), ±0.75 px at 1/upsample steps. */
function refine(rr: Float64Array, ri: Float64Array, w: number, h: number, sx: number, sy: number, up: number): [number, number] {
  const half = Math.ceil(0.75 * up);
  const m = 2 * half + 1;
  // Column kernel: for each frequency k (signed) and output x offset.
  const ekr = new Float64Array(w * m);
  const eki = new Float64Array(w * m);
  for (let k = 0; k < w; k++) {
    const f = k > w / 2 ? k - w : k;
    for (let o = 0; o < m; o++) {
      const x = sx + (o - half) / up;
      const a = (2 * Math.PI * f * x) / w;
      ekr[k * m + o] = Math.cos(a);
      eki[k * m + o] = Math.sin(a);
    }
  }
  // T[l][o] = Σ_k R[l,k] e^{i 2π f_k x_o / w}
  const tr = new Float64Array(h * m);
  const ti = new Float64Array(h * m);
  for (let l = 0; l < h; l++) {
    const row = l * w;
    for (let k = 0; k < w; k++) {
      const a = rr[row + k];
      const b = ri[row + k];
      if (a === 0 && b === 0) continue;
      const kb = k * m;
      const tb = l * m;
      for (let o = 0; o < m; o++) {
        const c = ekr[kb + o];
        const d = eki[kb + o];
        tr[tb + o] += a * c - b * d;
        ti[tb + o] += a * d + b * c;
      }
    }
  }
  const elr = new Float64Array(h * m);
  const eli = new Float64Array(h * m);
  for (let l = 0; l < h; l++) {
    const f = l > h / 2 ? l - h : l;
    for (let q = 0; q < m; q++) {
      const a = (2 * Math.PI * f * (sy + (q - half) / up)) / h;
      elr[l * m + q] = Math.cos(a);
      eli[l * m + q] = Math.sin(a);
    }
  }
  let best = -Infinity;
  let bx = sx;
  let by = sy;
  for (let q = 0; q < m; q++) {
    for (let o = 0; o < m; o++) {
      let re = 0;
      for (let l = 0; l < h; l++) re += tr[l * m + o] * elr[l * m + q] - ti[l * m + o] * eli[l * m + q];
      if (re > best) {
        best = re;
        bx = sx + (o - half) / up;
        by = sy + (q - half) / up;
      }
    }
  }
  return [bx, by];
}
