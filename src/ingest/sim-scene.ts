/**
 * Simulated SPIM specimen and camera. The specimen is a set of 3-D Gaussian beads and short
 * filaments rendered analytically, so injected faults have exact ground truth: lateral drift moves
 * every object by a sub-pixel amount, defocus widens the Gaussians (a Gaussian blur of a Gaussian is
 * a Gaussian), bleaching scales amplitudes. The camera adds an offset, shot noise and read noise.
 */

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SceneOptions {
  width: number;
  height: number;
  zPlanes: number;
  channels: number;
  blobs: number;
  seed: number;
  bitDepth: number;
  offset: number;
  /** Peak signal in ADU above offset for an in-focus bead. */
  peak: number;
  readNoise: number;
  /** electrons per ADU (shot noise variance in ADU = signal / gain). */
  gain: number;
}

/** The simulated camera's signal and noise (peak ADU above offset, read noise in ADU, electrons per ADU). */
export function simCamera(bitDepth: number): Pick<SceneOptions, 'peak' | 'readNoise' | 'gain'> {
  return { peak: bitDepth > 8 ? 1500 : 60, readNoise: 1.6, gain: 0.46 };
}

export interface PlaneState {
  /** Lateral shift of the whole specimen in pixels. */
  dx: number;
  dy: number;
  /** Extra Gaussian blur sigma in pixels (defocus). */
  blur: number;
  /** Amplitude factor (bleaching, saturation injection). */
  gainFactor: number;
}

interface Blob {
  x: number;
  y: number;
  z: number;
  sigma: number;
  amp: number;
  channel: number;
}

const NOISE_TABLE = 1 << 20;

export class SimScene {
  private readonly blobs: Blob[] = [];
  private readonly noise = new Float32Array(NOISE_TABLE);
  private readonly clean: Float32Array;
  private readonly rnd: () => number;
  readonly maxValue: number;

  constructor(readonly o: SceneOptions) {
    this.rnd = mulberry32(o.seed);
    this.clean = new Float32Array(o.width * o.height);
    this.maxValue = (1 << o.bitDepth) - 1;
    const r = this.rnd;
    for (let i = 0; i < o.blobs; i++) {
      this.blobs.push({
        x: r() * o.width,
        y: r() * o.height,
        z: r() * o.zPlanes,
        sigma: 1.2 + r() * 2.5,
        amp: o.peak * (0.2 + 0.8 * r()),
        channel: Math.floor(r() * o.channels),
      });
    }
    // Filaments: chains of small beads along random directions.
    const filaments = Math.max(1, Math.floor(o.blobs / 40));
    for (let f = 0; f < filaments; f++) {
      let x = r() * o.width;
      let y = r() * o.height;
      const z = r() * o.zPlanes;
      const ang = r() * Math.PI * 2;
      const len = 20 + r() * Math.min(o.width, o.height) * 0.3;
      const ch = Math.floor(r() * o.channels);
      for (let s = 0; s < len; s += 1.5) {
        this.blobs.push({ x, y, z, sigma: 1.0, amp: o.peak * 0.3, channel: ch });
        x += Math.cos(ang) * 1.5;
        y += Math.sin(ang) * 1.5;
      }
    }
    // Standard normal table (Box-Muller); frames index it at a random start and stride.
    for (let i = 0; i < NOISE_TABLE; i += 2) {
      const u = Math.max(r(), 1e-12);
      const v = r();
      const m = Math.sqrt(-2 * Math.log(u));
      this.noise[i] = m * Math.cos(2 * Math.PI * v);
      this.noise[i + 1] = m * Math.sin(2 * Math.PI * v);
    }
  }

  /** Renders the noise-free signal (ADU above offset) of plane z, channel c into an internal buffer. */
  renderClean(z: number, c: number, st: PlaneState): Float32Array {
    const { width: W, height: Hh } = this.o;
    const img = this.clean;
    img.fill(0);
    for (const b of this.blobs) {
      if (b.channel !== c) continue;
      const dz = (z - b.z) * 1.5; // axial extent ~ 1.5x lateral in plane units
      const axial = Math.exp(-(dz * dz) / (2 * b.sigma * b.sigma * 4));
      if (axial < 1e-3) continue;
      const s2 = b.sigma * b.sigma + st.blur * st.blur;
      const s = Math.sqrt(s2);
      // Flux conserved: amplitude drops as the blur widens the spot.
      const amp = b.amp * axial * st.gainFactor * ((b.sigma * b.sigma) / s2);
      const cx = b.x + st.dx;
      const cy = b.y + st.dy;
      const rad = Math.ceil(3.5 * s);
      const x0 = Math.max(0, Math.floor(cx - rad));
      const x1 = Math.min(W - 1, Math.ceil(cx + rad));
      const y0 = Math.max(0, Math.floor(cy - rad));
      const y1 = Math.min(Hh - 1, Math.ceil(cy + rad));
      const inv = 1 / (2 * s2);
      for (let y = y0; y <= y1; y++) {
        const ddy = y - cy;
        const ey = ddy * ddy * inv;
        const row = y * W;
        for (let x = x0; x <= x1; x++) {
          const ddx = x - cx;
          img[row + x] += amp * Math.exp(-(ddx * ddx * inv + ey));
        }
      }
    }
    return img;
  }

  /** Adds offset, shot and read noise to `clean` and writes camera ADUs into `out`. */
  expose(clean: Float32Array, out: Uint16Array | Uint8Array, background: number): void {
    const { offset, readNoise, gain } = this.o;
    const nz = this.noise;
    const mask = NOISE_TABLE - 1;
    let j = Math.floor(this.rnd() * NOISE_TABLE);
    const stride = 1 + 2 * Math.floor(this.rnd() * 1000); // odd: visits the whole table
    const max = this.maxValue;
    const invGain = 1 / gain;
    const r2 = readNoise * readNoise;
    for (let i = 0; i < clean.length; i++) {
      const s = clean[i] + background;
      const sigma = Math.sqrt(s * invGain + r2);
      let v = offset + s + sigma * nz[j];
      j = (j + stride) & mask;
      v = Math.round(v);
      out[i] = v < 0 ? 0 : v > max ? max : v;
    }
  }
}
