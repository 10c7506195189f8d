/**
 * Pyramid kernels. A level halves y and x over 2 x 2 windows and z over consecutive plane pairs
 * (when the level above has more than one plane); odd edges use the samples that exist (a 1 x 2,
 * 2 x 1 or lone window, a lone last plane). The per-plane step keeps an exact intermediate per
 * output pixel (`ext`, uint32): the 2 x 2 sum (mean), maximum (max) or the top-left sample
 * (decimate). The pair step turns two such planes into the level's plane:
 *   mean     = sum of the window's samples / their count, rounded half to even (numpy's `round`)
 *   max      = maximum of the window
 *   decimate = the sample at (2z, 2y, 2x)
 * A plane that never arrived is fill value 0 in the level above and counts as zeros here, so every
 * level is a function of the level above exactly as stored.
 */

export type DownsampleMethod = 'mean' | 'max' | 'decimate';
export const DOWNSAMPLE_METHODS: readonly DownsampleMethod[] = ['mean', 'max', 'decimate'];

/** Plane size at the next level. */
export function halfOf(n: number): number {
  return (n + 1) >> 1;
}

/**
 * The per-plane step: `px` (w x h) reduced into ext (halfOf(w) x halfOf(h), row-major). Two rows of
 * the source per output row; one branch per row pair for the odd bottom edge, the odd right column
 * handled after each row's loop.
 */
export function reducePlane(px: Uint16Array | Uint8Array, w: number, h: number, method: DownsampleMethod, ext: Uint32Array): void {
  if (method === 'mean' && px instanceof Uint16Array && (w & 1) === 0 && (h & 1) === 0 && px.byteOffset % 4 === 0) {
    sum2x2Words(px, w, h, ext);
    return;
  }
  const w2 = halfOf(w);
  const h2 = halfOf(h);
  const even = w >> 1;
  for (let y = 0; y < h2; y++) {
    const a = 2 * y * w;
    const b = 2 * y + 1 < h ? a + w : -1;
    let o = y * w2;
    if (method === 'decimate') {
      for (let x = 0; x < w2; x++) ext[o++] = px[a + 2 * x];
    } else if (method === 'max') {
      if (b >= 0) {
        for (let x = 0; x < even; x++) {
          const i = 2 * x;
          const m1 = px[a + i] > px[a + i + 1] ? px[a + i] : px[a + i + 1];
          const m2 = px[b + i] > px[b + i + 1] ? px[b + i] : px[b + i + 1];
          ext[o++] = m1 > m2 ? m1 : m2;
        }
        if (w & 1) ext[o] = px[a + w - 1] > px[b + w - 1] ? px[a + w - 1] : px[b + w - 1];
      } else {
        for (let x = 0; x < even; x++) ext[o++] = px[a + 2 * x] > px[a + 2 * x + 1] ? px[a + 2 * x] : px[a + 2 * x + 1];
        if (w & 1) ext[o] = px[a + w - 1];
      }
    } else if (b >= 0) {
      for (let x = 0; x < even; x++) {
        const i = 2 * x;
        ext[o++] = px[a + i] + px[a + i + 1] + px[b + i] + px[b + i + 1];
      }
      if (w & 1) ext[o] = px[a + w - 1] + px[b + w - 1];
    } else {
      for (let x = 0; x < even; x++) ext[o++] = px[a + 2 * x] + px[a + 2 * x + 1];
      if (w & 1) ext[o] = px[a + w - 1];
    }
  }
}

/** The mean's 2 x 2 sums of an even-sized uint16 plane, reading two pixels per 32-bit load (little endian). */
function sum2x2Words(px: Uint16Array, w: number, h: number, ext: Uint32Array): void {
  const words = new Uint32Array(px.buffer, px.byteOffset, (w * h) >> 1);
  const w2 = w >> 1;
  for (let y = 0; y < h >> 1; y++) {
    let a = y * w; // row 2y, in words
    let b = a + w2;
    const o = y * w2;
    for (let x = 0; x < w2; x++) {
      const u = words[a++];
      const v = words[b++];
      ext[o + x] = (u & 0xffff) + (u >>> 16) + (v & 0xffff) + (v >>> 16);
    }
  }
}

/**
 * The pair step: planes `a` and `b` (ext of the level above, null = a plane that never arrived;
 * `hasB` false for a lone plane or a level that does not halve z) into `out` (w2 x h2). `w`, `h`
 * are the level above's plane size (they give each window's sample count for the mean).
 */
export function combinePair(
  a: Uint32Array | null,
  b: Uint32Array | null,
  hasB: boolean,
  w: number,
  h: number,
  method: DownsampleMethod,
  out: Uint16Array | Uint8Array,
): void {
  const w2 = halfOf(w);
  const h2 = halfOf(h);
  const n = w2 * h2;
  if (method === 'decimate' || (method === 'max' && !hasB)) {
    if (a) for (let i = 0; i < n; i++) out[i] = a[i];
    else out.fill(0, 0, n);
    return;
  }
  if (method === 'max') {
    for (let i = 0; i < n; i++) {
      const va = a ? a[i] : 0;
      const vb = b ? b[i] : 0;
      out[i] = va > vb ? va : vb;
    }
    return;
  }
  // mean: the divisor is a power of two (1, 2, 4 or 8): shift, rounding half to even without a
  // branch (add half - 1, plus 1 when the quotient would be odd). A lost plane adds zero but counts.
  let p = a;
  let q = hasB ? b : null;
  if (!p) {
    p = q;
    q = null;
  }
  if (!p) {
    out.fill(0, 0, n);
    return;
  }
  const zs = hasB ? 1 : 0;
  const even = w >> 1;
  for (let y = 0; y < h2; y++) {
    const ys = 2 * y + 1 < h ? 1 : 0;
    const row = y * w2;
    const sh = zs + ys + 1;
    const bias = (1 << (sh - 1)) - 1;
    if (q) {
      for (let i = row; i < row + even; i++) {
        const v = p[i] + q[i];
        out[i] = (v + bias + ((v >>> sh) & 1)) >>> sh;
      }
    } else {
      for (let i = row; i < row + even; i++) {
        const v = p[i];
        out[i] = (v + bias + ((v >>> sh) & 1)) >>> sh;
      }
    }
    if (w & 1) {
      const i = row + even;
      const v = p[i] + (q ? q[i] : 0);
      const s1 = sh - 1; // the odd right column's windows have one column
      out[i] = s1 === 0 ? v : (v + (1 << (s1 - 1)) - 1 + ((v >>> s1) & 1)) >>> s1;
    }
  }
}
