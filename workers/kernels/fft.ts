/**
 * In-place iterative radix-2 complex FFT on split Float64Arrays, with per-size cached twiddles and
 * bit-reversal tables. Small and allocation-free per call; sizes are powers of two (the QC kernels
 * choose power-of-two ROIs). Measured against fft.js in bench/qc-bench.
 */
interface Plan {
  n: number;
  rev: Uint32Array;
  cos: Float64Array;
  sin: Float64Array;
}

const plans = new Map<number, Plan>();

function plan(n: number): Plan {
  let p = plans.get(n);
  if (p) return p;
  if (n < 1 || (n & (n - 1)) !== 0) throw new Error(`FFT size ${n} is not a power of two`);
  const bits = Math.log2(n);
  const rev = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    rev[i] = r;
  }
  const cos = new Float64Array(n / 2);
  const sin = new Float64Array(n / 2);
  for (let i = 0; i < n / 2; i++) {
    cos[i] = Math.cos((2 * Math.PI * i) / n);
    sin[i] = -Math.sin((2 * Math.PI * i) / n);
  }
  p = { n, rev, cos, sin };
  plans.set(n, p);
  return p;
}

/** Forward FFT (e^{-2πikn/N}) of re/im in place; `inverse` uses e^{+...} without 1/N scaling. */
export function fft(re: Float64Array, im: Float64Array, inverse = false): void {
  const n = re.length;
  const { rev, cos, sin } = plan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (j > i) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  const sgn = inverse ? -1 : 1;
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1;
    const step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0, tw = 0; k < half; k++, tw += step) {
        const wr = cos[tw];
        const wi = sgn * sin[tw];
        const a = start + k;
        const b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

let colRe = new Float64Array(0);
let colIm = new Float64Array(0);

/** 2-D FFT of a w x h row-major complex image in place (rows, then columns). */
export function fft2(re: Float64Array, im: Float64Array, w: number, h: number, inverse = false): void {
  for (let y = 0; y < h; y++) fft(re.subarray(y * w, (y + 1) * w), im.subarray(y * w, (y + 1) * w), inverse);
  if (colRe.length < h) {
    colRe = new Float64Array(h);
    colIm = new Float64Array(h);
  }
  const cr = colRe.subarray(0, h);
  const ci = colIm.subarray(0, h);
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      cr[y] = re[y * w + x];
      ci[y] = im[y * w + x];
    }
    fft(cr, ci, inverse);
    for (let y = 0; y < h; y++) {
      re[y * w + x] = cr[y];
      im[y * w + x] = ci[y];
    }
  }
}

interface DctPlan {
  /** 2·cos(πk/2n) and −2·sin(πk/2n): the post-FFT twiddles of Makhoul's DCT-II. */
  c: Float64Array;
  s: Float64Array;
  re: Float64Array;
  im: Float64Array;
}

const dctPlans = new Map<number, DctPlan>();

function dctPlan(n: number): DctPlan {
  let d = dctPlans.get(n);
  if (!d) {
    const c = new Float64Array(n);
    const s = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      c[k] = 2 * Math.cos((Math.PI * k) / (2 * n));
      s[k] = -2 * Math.sin((Math.PI * k) / (2 * n));
    }
    d = { c, s, re: new Float64Array(n), im: new Float64Array(n) };
    dctPlans.set(n, d);
  }
  return d;
}

/**
 * Unscaled DCT-II of `n` real samples via one complex FFT of length n (Makhoul 1980):
 * C_k = 2 Σ x_j cos(π k (2j+1) / 2n). Uses scratch buffers; writes into out.
 */
export function dct2(x: Float64Array, out: Float64Array, n: number, xOff = 0, xStride = 1, oOff = 0, oStride = 1): void {
  const d = dctPlan(n);
  const { re, im } = d;
  const half = n >> 1;
  for (let j = 0; j < half; j++) {
    re[j] = x[xOff + 2 * j * xStride];
    re[n - 1 - j] = x[xOff + (2 * j + 1) * xStride];
  }
  if (n & 1) re[half] = x[xOff + (n - 1) * xStride];
  im.fill(0);
  fft(re, im);
  for (let k = 0; k < n; k++) out[oOff + k * oStride] = re[k] * d.c[k] - im[k] * d.s[k];
}

/**
 * Two unscaled DCT-IIs at once (rows a and b, length n even) from ONE complex FFT: with Makhoul's
 * reordering v_a, v_b, FFT(v_a + i·v_b) = Z gives V_a[k] = (Z[k] + conj Z[n-k]) / 2 and
 * V_b[k] = (Z[k] − conj Z[n-k]) / 2i. Halves the FFT work of the 2-D DCT.
 */
export function dct2Pair(
  x: Float64Array,
  aOff: number,
  bOff: number,
  stride: number,
  n: number,
  out: Float64Array,
  oa: number,
  ob: number,
  oStride: number,
): void {
  const { re, im, c, s } = dctPlan(n);
  const half = n >> 1;
  for (let j = 0; j < half; j++) {
    re[j] = x[aOff + 2 * j * stride];
    im[j] = x[bOff + 2 * j * stride];
    re[n - 1 - j] = x[aOff + (2 * j + 1) * stride];
    im[n - 1 - j] = x[bOff + (2 * j + 1) * stride];
  }
  fft(re, im);
  for (let k = 0; k < n; k++) {
    const m = k === 0 ? 0 : n - k;
    const zr = re[k];
    const zi = im[k];
    const wr = re[m];
    const wi = -im[m]; // conj Z[n-k]
    const ar = (zr + wr) / 2;
    const ai = (zi + wi) / 2;
    const br = (zi - wi) / 2; // (Z - conj)/2i : real part = imag(Z - conj)/2
    const bi = -(zr - wr) / 2;
    out[oa + k * oStride] = ar * c[k] - ai * s[k];
    out[ob + k * oStride] = br * c[k] - bi * s[k];
  }
}
