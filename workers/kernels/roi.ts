/** Cutting and binning the region a QC kernel looks at, into a reused Float64Array. */

export interface Region {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Largest power of two <= v (>= 1). */
export function pow2Floor(v: number): number {
  return v < 1 ? 1 : 2 ** Math.floor(Math.log2(v));
}

/** A centred region of at most maxSide x maxSide, power-of-two sides, or the configured [x, y, w, h]. */
export function centredRegion(width: number, height: number, maxSide: number, roi: number[]): Region {
  if (roi.length === 4) {
    const [x, y, w, h] = roi;
    const cw = pow2Floor(Math.min(w, width - x));
    const ch = pow2Floor(Math.min(h, height - y));
    return { x: Math.max(0, x), y: Math.max(0, y), w: cw, h: ch };
  }
  const w = pow2Floor(Math.min(width, maxSide));
  const h = pow2Floor(Math.min(height, maxSide));
  return { x: (width - w) >> 1, y: (height - h) >> 1, w, h };
}

/** Sums bin x bin blocks of the region into out (length (w/bin)*(h/bin)); returns the binned mean. */
export function binRegion(px: Uint16Array | Uint8Array, width: number, r: Region, bin: number, out: Float64Array): number {
  const bw = Math.floor(r.w / bin);
  const bh = Math.floor(r.h / bin);
  const n = bw * bh;
  out.fill(0, 0, n);
  for (let y = 0; y < bh * bin; y++) {
    let p = (r.y + y) * width + r.x;
    const orow = ((y / bin) | 0) * bw;
    // No division per pixel: walk each output column's `bin` inputs.
    for (let ox = 0; ox < bw; ox++) {
      let acc = 0;
      for (let k = 0; k < bin; k++) acc += px[p++];
      out[orow + ox] += acc;
    }
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i];
  return n > 0 ? sum / n : 0;
}
