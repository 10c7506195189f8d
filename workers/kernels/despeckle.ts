/**
 * Outlier suppression before drift estimation: hot pixels (sCMOS fixed pattern) and saturated
 * specks must not drive the correlation peak. Saturated pixels are replaced by a background value,
 * then a 3 x 3 median removes isolated outliers while keeping edges (the specimen) where they are.
 */

let tmp = new Float64Array(0);

/** Copies region (x, y, w, h) of px into out, with pixels >= satLevel replaced by `fill`. */
export function cropMasked(
  px: Uint16Array | Uint8Array,
  width: number,
  x0: number,
  y0: number,
  w: number,
  h: number,
  satLevel: number,
  fill: number,
  out: Float64Array,
): void {
  for (let y = 0; y < h; y++) {
    let p = (y0 + y) * width + x0;
    const o = y * w;
    for (let x = 0; x < w; x++, p++) {
      const v = px[p];
      out[o + x] = v >= satLevel ? fill : v;
    }
  }
}

/**
 * Replaces outliers of img (w x h) in place by their 3 x 3 median; the 1-px border keeps its values
 * (the window zeroes it). An outlier differs from the median by more than `k` camera noise sigmas
 * at that level (shot noise at `gain` e-/ADU above `offset`, plus read noise); `k` = 0 replaces every
 * pixel (a plain median filter). Keeping the other pixels as they are keeps the sub-pixel accuracy.
 * Per pixel: the three columns are each sorted once (shared with the neighbours), and the median of
 * nine is med3(max of the column minima, med3 of the medians, min of the maxima).
 */
export function median3x3(img: Float64Array, w: number, h: number, k = 0, offset = 0, gain = 1, readNoise = 0): void {
  if (w < 3 || h < 3) return;
  const n = w * h;
  if (tmp.length < n) tmp = new Float64Array(n);
  const src = tmp;
  src.set(img.subarray(0, n));
  const k2 = k * k;
  const invGain = 1 / gain;
  const read2 = readNoise * readNoise;
  for (let y = 1; y < h - 1; y++) {
    const r0 = (y - 1) * w;
    const r1 = y * w;
    const r2 = (y + 1) * w;
    // Sorted column triples at x-1 and x, rolled along the row.
    let aLo = 0,
      aMid = 0,
      aHi = 0,
      bLo = 0,
      bMid = 0,
      bHi = 0;
    for (let x = 0; x < w; x++) {
      let p = src[r0 + x],
        q = src[r1 + x],
        r = src[r2 + x],
        t: number;
      if (p > q) {
        t = p;
        p = q;
        q = t;
      }
      if (q > r) {
        t = q;
        q = r;
        r = t;
      }
      if (p > q) {
        t = p;
        p = q;
        q = t;
      }
      if (x >= 2) {
        const lo = Math.max(aLo, bLo, p);
        const hi = Math.min(aHi, bHi, r);
        let m0 = aMid,
          m1 = bMid,
          m2 = q;
        if (m0 > m1) {
          t = m0;
          m0 = m1;
          m1 = t;
        }
        if (m1 > m2) {
          m1 = m2;
        }
        if (m0 > m1) {
          m1 = m0;
        }
        // med3(lo, m1, hi)
        let a = lo,
          b = m1,
          c = hi;
        if (a > b) {
          t = a;
          a = b;
          b = t;
        }
        if (b > c) {
          b = c;
        }
        if (a > b) {
          b = a;
        }
        if (k2 === 0) img[r1 + x - 1] = b;
        else {
          const d = src[r1 + x - 1] - b;
          if (d * d > k2 * (Math.max(0, b - offset) * invGain + read2)) img[r1 + x - 1] = b;
        }
      }
      aLo = bLo;
      aMid = bMid;
      aHi = bHi;
      bLo = p;
      bMid = q;
      bHi = r;
    }
  }
}

/** Sums bin x bin blocks of a w x h Float64 image into out ((w/bin) x (h/bin)). */
export function binFloat(img: Float64Array, w: number, h: number, bin: number, out: Float64Array): void {
  const bw = Math.floor(w / bin);
  const bh = Math.floor(h / bin);
  out.fill(0, 0, bw * bh);
  for (let y = 0; y < bh * bin; y++) {
    let p = y * w;
    const orow = ((y / bin) | 0) * bw;
    for (let ox = 0; ox < bw; ox++) {
      let acc = 0;
      for (let k = 0; k < bin; k++) acc += img[p++];
      out[orow + ox] += acc;
    }
  }
}
