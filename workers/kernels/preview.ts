/**
 * Preview kernels: mean-binning to the preview size, percentile auto-contrast, 16 -> 8-bit mapping,
 * strided max-accumulation for the stack MIP, and the list of saturated preview pixels.
 */

export function previewBin(width: number, height: number, maxSize: number): number {
  return Math.max(1, Math.ceil(Math.max(width, height) / maxSize));
}

/** Mean of bin x bin blocks (edge blocks average what they have) into out, and their maxima into maxOut. */
export function binMean(
  px: Uint16Array | Uint8Array,
  width: number,
  height: number,
  bin: number,
  out: Uint16Array,
  maxOut: Uint16Array | null,
): void {
  const ow = Math.ceil(width / bin);
  const oh = Math.ceil(height / bin);
  if (bin === 1) {
    for (let i = 0; i < width * height; i++) out[i] = px[i];
    if (maxOut) maxOut.set(out.subarray(0, width * height));
    return;
  }
  if (bin === 2 && px instanceof Uint16Array && width % 2 === 0 && height % 2 === 0 && px.byteOffset % 4 === 0) {
    binMean2(px, width, height, out, maxOut);
    return;
  }
  const acc = new Float64Array(ow);
  const mx = new Uint16Array(ow);
  const full = Math.floor(width / bin);
  for (let oy = 0; oy < oh; oy++) {
    acc.fill(0);
    mx.fill(0);
    const y0 = oy * bin;
    const y1 = Math.min(height, y0 + bin);
    for (let y = y0; y < y1; y++) {
      let p = y * width;
      // whole blocks without a division per pixel, then the ragged right edge
      for (let o = 0; o < full; o++) {
        let s = 0;
        let m = mx[o];
        for (let k = 0; k < bin; k++) {
          const v = px[p++];
          s += v;
          if (v > m) m = v;
        }
        acc[o] += s;
        mx[o] = m;
      }
      for (let x = full * bin; x < width; x++) {
        const v = px[p++];
        acc[full] += v;
        if (v > mx[full]) mx[full] = v;
      }
    }
    for (let ox = 0; ox < ow; ox++) {
      const cw = Math.min(width, (ox + 1) * bin) - ox * bin;
      out[oy * ow + ox] = Math.round(acc[ox] / (cw * (y1 - y0)));
      if (maxOut) maxOut[oy * ow + ox] = mx[ox];
    }
  }
}

/** 2 x 2 binning of 16-bit frames with 32-bit loads (two horizontal neighbours per load): ~3x faster. */
function binMean2(px: Uint16Array, width: number, height: number, out: Uint16Array, maxOut: Uint16Array | null): void {
  const words = new Uint32Array(px.buffer, px.byteOffset, (width * height) >> 1);
  const ow = width >> 1;
  for (let oy = 0; oy < height >> 1; oy++) {
    let a = oy * width; // row 2·oy in words (width/2 words per row)
    let b = a + ow;
    const o = oy * ow;
    for (let ox = 0; ox < ow; ox++) {
      const wa = words[a++];
      const wb = words[b++];
      const p0 = wa & 0xffff;
      const p1 = wa >>> 16;
      const p2 = wb & 0xffff;
      const p3 = wb >>> 16;
      out[o + ox] = (p0 + p1 + p2 + p3 + 2) >>> 2;
      if (maxOut) {
        // Branch-free maxima ((x - y) >> 31 is -1 when x < y): on noisy pixels the compare
        // branches mispredicted half the time, 14 -> 5.6 ms per 2048² frame (measured).
        const d01 = p0 - p1;
        const m01 = p0 - (d01 & (d01 >> 31));
        const d23 = p2 - p3;
        const m23 = p2 - (d23 & (d23 >> 31));
        const d = m01 - m23;
        maxOut[o + ox] = m01 - (d & (d >> 31));
      }
    }
  }
}

/** Percentile window [lo, hi] of n values (clip % at each end), from a 65536-bin histogram. */
const WINDOW_HIST = new Uint32Array(65536);

export function percentileWindow(img: Uint16Array, n: number, clipPercent: number): [number, number] {
  const hist = WINDOW_HIST;
  hist.fill(0);
  for (let i = 0; i < n; i++) hist[img[i]]++;
  return windowFromHistogram(hist, n, clipPercent);
}

/** The percentile window of n values from their 65536-bin histogram (also the SIMD preview's). */
export function windowFromHistogram(hist: Uint32Array, n: number, clipPercent: number): [number, number] {
  const lowRank = Math.floor((clipPercent / 100) * n);
  const highRank = Math.max(0, Math.ceil((1 - clipPercent / 100) * n) - 1);
  let cum = 0;
  let lo = 0;
  let hi = 0;
  let haveLo = false;
  for (let v = 0; v < 65536; v++) {
    const c = hist[v];
    if (c === 0) continue;
    if (!haveLo && cum + c > lowRank) {
      lo = v;
      haveLo = true;
    }
    if (cum + c > highRank) {
      hi = v;
      break;
    }
    cum += c;
  }
  if (hi <= lo) hi = lo + 1;
  return [lo, hi];
}

export function toByte(img: Uint16Array, n: number, lo: number, hi: number, out: Uint8Array): void {
  const scale = 255 / (hi - lo);
  for (let i = 0; i < n; i++) {
    const v = (img[i] - lo) * scale;
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : v + 0.5;
  }
}

/**
 * One plane of the live volume: the maximum of each step x step block (a bead smaller than a block
 * stays visible, which every-step-th-pixel sampling would miss). `out` is ceil(w/step) x ceil(h/step).
 */
export function binMaxPlane(px: Uint16Array | Uint8Array, width: number, height: number, step: number, out: Uint16Array): void {
  const ow = Math.ceil(width / step);
  out.fill(0, 0, ow * Math.ceil(height / step));
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const orow = Math.floor(y / step) * ow;
    for (let bx = 0, x = 0; x < width; bx++) {
      const end = Math.min(width, x + step);
      let m = out[orow + bx];
      for (; x < end; x++) {
        const v = px[row + x];
        if (v > m) m = v;
      }
      out[orow + bx] = m;
    }
  }
}

/** Max-accumulates every step-th pixel into the MIP buffer (CAS only when the value is larger). */
export function accumulateMip(px: Uint16Array | Uint8Array, width: number, height: number, step: number, mip: Uint16Array): void {
  const mw = Math.ceil(width / step);
  for (let y = 0, my = 0; y < height; y += step, my++) {
    const row = y * width;
    const mrow = my * mw;
    for (let x = 0, mx = 0; x < width; x += step, mx++) {
      const v = px[row + x];
      let cur = mip[mrow + mx];
      // Two workers may add planes of the same stack at once: compare-and-swap keeps every maximum.
      while (v > cur) {
        const prev = Atomics.compareExchange(mip, mrow + mx, cur, v);
        if (prev === cur) break;
        cur = prev;
      }
    }
  }
}

/**
 * Indices (in an ow-wide preview grid, each cell `factor` x `factor` frame pixels) of the cells that
 * hold a frame pixel >= level, ascending, at most `cap`. `mark` (ow x oh) is scratch.
 */
export function saturatedCells(
  px: Uint16Array | Uint8Array,
  width: number,
  height: number,
  factor: number,
  ow: number,
  oh: number,
  level: number,
  cap: number,
  mark: Uint8Array,
): Uint32Array {
  mark.fill(0, 0, ow * oh);
  let count = 0;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const cell = Math.floor(y / factor) * ow;
    for (let x = 0; x < width; x++) {
      if (px[row + x] >= level) {
        const c = cell + Math.floor(x / factor);
        if (mark[c] === 0) {
          mark[c] = 1;
          count++;
        }
      }
    }
  }
  const out = new Uint32Array(Math.min(count, cap));
  for (let i = 0, k = 0; i < ow * oh && k < out.length; i++) if (mark[i] === 1) out[k++] = i;
  return out;
}

/** Indices of preview pixels whose block maximum reached the saturation level, ascending, at most cap. */
export function saturatedIndices(maxImg: Uint16Array, n: number, level: number, cap: number): Uint32Array {
  let count = 0;
  for (let i = 0; i < n; i++) if (maxImg[i] >= level) count++;
  const out = new Uint32Array(Math.min(count, cap));
  let k = 0;
  for (let i = 0; i < n && k < out.length; i++) if (maxImg[i] >= level) out[k++] = i;
  return out;
}
