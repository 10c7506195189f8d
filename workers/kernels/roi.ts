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

/**
 * Sums bin x bin blocks of the region into out (length (w/bin)*(h/bin)); returns the binned mean.
 * Every frame's focus region passes here. Bins 2 and 4 are unrolled: the default 512-px region
 * binned to 128 is bin 4, 0.16 ms a frame against 0.43 for the inner loop over `bin` inputs
 * (bench/qc-bench.ts, "focus ROI" row); 8-bit frames get their own copy of the loop, so neither
 * loop sees two array types.
 */
export function binRegion(px: Uint16Array | Uint8Array, width: number, r: Region, bin: number, out: Float64Array): number {
  const bw = Math.floor(r.w / bin);
  const bh = Math.floor(r.h / bin);
  const n = bw * bh;
  out.fill(0, 0, n);
  if (px instanceof Uint16Array) binRows16(px, width, r, bin, bw, bh, out);
  else binRows8(px, width, r, bin, bw, bh, out);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i];
  return n > 0 ? sum / n : 0;
}

function binRows16(px: Uint16Array, width: number, r: Region, bin: number, bw: number, bh: number, out: Float64Array): void {
  for (let y = 0; y < bh * bin; y++) {
    let p = (r.y + y) * width + r.x;
    const orow = ((y / bin) | 0) * bw;
    if (bin === 4) for (let ox = 0; ox < bw; ox++, p += 4) out[orow + ox] += px[p] + px[p + 1] + px[p + 2] + px[p + 3];
    else if (bin === 2) for (let ox = 0; ox < bw; ox++, p += 2) out[orow + ox] += px[p] + px[p + 1];
    else
      for (let ox = 0; ox < bw; ox++) {
        let acc = 0;
        for (let k = 0; k < bin; k++) acc += px[p++];
        out[orow + ox] += acc;
      }
  }
}

/** binRows16 for 8-bit frames (the same body: a separate function keeps each loop monomorphic). */
function binRows8(px: Uint8Array, width: number, r: Region, bin: number, bw: number, bh: number, out: Float64Array): void {
  for (let y = 0; y < bh * bin; y++) {
    let p = (r.y + y) * width + r.x;
    const orow = ((y / bin) | 0) * bw;
    for (let ox = 0; ox < bw; ox++) {
      let acc = 0;
      for (let k = 0; k < bin; k++) acc += px[p++];
      out[orow + ox] += acc;
    }
  }
}
