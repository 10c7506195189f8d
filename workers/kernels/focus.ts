/**
 * Focus measures on the binned focus region. Higher = sharper for all of them.
 * - dcts: normalized DCT Shannon entropy (Royer et al. 2016, AutoPilot's NormDCTEntropyShannon):
 *   c = 2-D DCT-II, ĉ = c/‖c‖₂, DCTS = -(2/(rx·ry)) Σ_{x/rx + y/ry < 1} |ĉ| ln|ĉ|, with rx = ⌊W/d⌋,
 *   ry = ⌊H/d⌋ and d the PSF support diameter in binned pixels. Natural log. Invariant to intensity scale.
 * - tenengrad: mean(Gx² + Gy²) of the Sobel gradients / mean²  (intensity-normalized)
 * - laplacian_variance: var(I * [0 1 0; 1 -4 1; 0 1 0]) / mean²
 * - brenner: Σ (I(x+2,y) − I(x,y))² / (N · mean²)
 */
import { dct2, dct2Pair } from './fft.js';

let rowsOut = new Float64Array(0);
let coef = new Float64Array(0);

export function dcts(img: Float64Array, w: number, h: number, psfPx: number): number {
  const n = w * h;
  if (rowsOut.length < n) {
    rowsOut = new Float64Array(n);
    coef = new Float64Array(n);
  }
  if (w % 2 === 0 && h % 2 === 0) {
    for (let y = 0; y < h; y += 2) dct2Pair(img, y * w, (y + 1) * w, 1, w, rowsOut, y * w, (y + 1) * w, 1);
    for (let x = 0; x < w; x += 2) dct2Pair(rowsOut, x, x + 1, w, h, coef, x, x + 1, w);
  } else {
    for (let y = 0; y < h; y++) dct2(img, rowsOut, w, y * w, 1, y * w, 1);
    for (let x = 0; x < w; x++) dct2(rowsOut, coef, h, x, w, x, w);
  }
  let l2 = 0;
  for (let i = 0; i < n; i++) l2 += coef[i] * coef[i];
  if (l2 === 0) return 0;
  const inv = 1 / Math.sqrt(l2);
  const d = Math.max(1, psfPx);
  const rx = Math.max(1, Math.floor(w / d));
  const ry = Math.max(1, Math.floor(h / d));
  let ent = 0;
  for (let y = 0; y < Math.min(h, ry); y++) {
    const lim = rx * (1 - y / ry);
    for (let x = 0; x < Math.min(w, Math.ceil(lim)); x++) {
      if (x / rx + y / ry >= 1) break;
      const a = Math.abs(coef[y * w + x]) * inv;
      if (a > 0) ent += a * Math.log(a);
    }
  }
  return (-2 / (rx * ry)) * ent;
}

function meanOf(img: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += img[i];
  return s / n;
}

export function tenengrad(img: Float64Array, w: number, h: number): number {
  if (w < 3 || h < 3) return 0;
  let s = 0;
  for (let y = 1; y < h - 1; y++) {
    const r0 = (y - 1) * w;
    const r1 = y * w;
    const r2 = (y + 1) * w;
    for (let x = 1; x < w - 1; x++) {
      const gx = img[r0 + x + 1] + 2 * img[r1 + x + 1] + img[r2 + x + 1] - img[r0 + x - 1] - 2 * img[r1 + x - 1] - img[r2 + x - 1];
      const gy = img[r2 + x - 1] + 2 * img[r2 + x] + img[r2 + x + 1] - img[r0 + x - 1] - 2 * img[r0 + x] - img[r0 + x + 1];
      s += gx * gx + gy * gy;
    }
  }
  const m = meanOf(img, w * h);
  return m > 0 ? s / ((w - 2) * (h - 2)) / (m * m) : 0;
}

export function laplacianVariance(img: Float64Array, w: number, h: number): number {
  if (w < 3 || h < 3) return 0;
  let s = 0;
  let s2 = 0;
  const n = (w - 2) * (h - 2);
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      const l = img[i - w] + img[i + w] + img[i - 1] + img[i + 1] - 4 * img[i];
      s += l;
      s2 += l * l;
    }
  }
  const m = meanOf(img, w * h);
  const v = s2 / n - (s / n) * (s / n);
  return m > 0 ? v / (m * m) : 0;
}

export function brenner(img: Float64Array, w: number, h: number): number {
  if (w < 3) return 0;
  let s = 0;
  for (let y = 0; y < h; y++) {
    const r = y * w;
    for (let x = 0; x < w - 2; x++) {
      const d = img[r + x + 2] - img[r + x];
      s += d * d;
    }
  }
  const m = meanOf(img, w * h);
  return m > 0 ? s / (h * (w - 2)) / (m * m) : 0;
}

export function focusMeasures(img: Float64Array, w: number, h: number, which: string[], psfPx: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of which) {
    if (m === 'dcts') out.dcts = dcts(img, w, h, psfPx);
    else if (m === 'tenengrad') out.tenengrad = tenengrad(img, w, h);
    else if (m === 'laplacian_variance') out.laplacian_variance = laplacianVariance(img, w, h);
    else if (m === 'brenner') out.brenner = brenner(img, w, h);
  }
  return out;
}
