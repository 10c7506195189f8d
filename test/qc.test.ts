import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SimScene, mulberry32 } from '../src/ingest/sim-scene.js';
import { spectrum, phaseCorrelate } from '../workers/kernels/drift.js';
import { binRegion, centredRegion } from '../workers/kernels/roi.js';
import { dcts, focusMeasures } from '../workers/kernels/focus.js';
import { frameStats } from '../workers/kernels/stats.js';
import { TimingWindow } from '../src/qc/stream-qc.js';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { shmPath, startTestApp, waitFor } from './helpers.js';

const W = 512;
const H = 512;
const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true });
});

function scene(seed: number, blobs: number, peak: number): SimScene {
  return new SimScene({
    width: W,
    height: H,
    zPlanes: 1,
    channels: 1,
    blobs,
    seed,
    bitDepth: 16,
    offset: 100,
    peak,
    readNoise: 1.6,
    gain: 0.46,
  });
}

describe('drift (phase correlation + upsampled DFT)', () => {
  const r = centredRegion(W, H, 256, []);
  const img = new Float64Array(r.w * r.h);
  const frame = new Uint16Array(W * H);
  const spec = (s: SimScene, dx: number, dy: number) => {
    s.expose(s.renderClean(0.5, 0, { dx, dy, blur: 0, gainFactor: 1 }), frame, 10);
    binRegion(frame, W, r, 1, img);
    return spectrum(img, r.w, r.h, new Float64Array(2 * r.w * r.h)).slice();
  };

  it('recovers known sub-pixel shifts in [-20, 20] px on noisy frames with RMS error <= 0.05 px', () => {
    const s = scene(5, 600, 400);
    const ref = spec(s, 0, 0);
    const rnd = mulberry32(11);
    let se = 0;
    let n = 0;
    for (let i = 0; i < 24; i++) {
      const dx = rnd() * 40 - 20;
      const dy = rnd() * 40 - 20;
      const d = phaseCorrelate(spec(s, dx, dy), ref, r.w, r.h, 20, 8);
      expect(d.valid).toBe(true);
      se += (d.dx - dx) ** 2 + (d.dy - dy) ** 2;
      n += 2;
    }
    const rms = Math.sqrt(se / n);
    expect(rms).toBeLessThanOrEqual(0.05);
  });

  it('reports low confidence (no shift) on a blank frame instead of returning noise', () => {
    const s = scene(9, 0, 400);
    const a = spec(s, 0, 0);
    const b = spec(s, 0, 0);
    const d = phaseCorrelate(a, b, r.w, r.h, 20, 8);
    expect(d.valid).toBe(false);
    expect(d.confidence).toBeLessThan(8);
    // and a real specimen is confidently above the same bar
    const t = scene(5, 600, 400);
    expect(phaseCorrelate(spec(t, 1.3, -2.1), spec(t, 0, 0), r.w, r.h, 20, 8).confidence).toBeGreaterThan(20);
  });
});

describe('focus region binning', () => {
  // Reference: each output pixel summed over its own bin x bin block (not row by row as binRegion).
  function blockSums(px: ArrayLike<number>, width: number, x0: number, y0: number, bw: number, bh: number, bin: number): number[] {
    const out: number[] = [];
    for (let oy = 0; oy < bh; oy++)
      for (let ox = 0; ox < bw; ox++) {
        let s = 0;
        for (let dy = 0; dy < bin; dy++) for (let dx = 0; dx < bin; dx++) s += px[(y0 + oy * bin + dy) * width + x0 + ox * bin + dx];
        out.push(s);
      }
    return out;
  }

  for (const bin of [1, 2, 3, 4, 5]) {
    it(`bin ${bin}: block sums of 16- and 8-bit frames, region off the frame's origin`, () => {
      const rnd = mulberry32(bin);
      const w = 96;
      const region = { x: 7, y: 5, w: 64, h: 48 };
      const bw = Math.floor(region.w / bin);
      const bh = Math.floor(region.h / bin);
      for (const px of [new Uint16Array(w * 64), new Uint8Array(w * 64)]) {
        const top = px instanceof Uint16Array ? 65536 : 256;
        for (let i = 0; i < px.length; i++) px[i] = Math.floor(rnd() * top);
        const out = new Float64Array(bw * bh).fill(-1);
        const mean = binRegion(px, w, region, bin, out);
        const want = blockSums(px, w, region.x, region.y, bw, bh, bin);
        expect(Array.from(out)).toEqual(want);
        expect(mean).toBe(want.reduce((a, b) => a + b, 0) / want.length);
      }
    });
  }
});

describe('focus measures', () => {
  const specimens: [string, SimScene][] = [
    ['sparse beads', scene(1, 200, 1000)],
    ['dense beads and filaments', scene(2, 900, 1000)],
    ['crowded dim specimen', scene(3, 2500, 300)],
  ];
  const fr = centredRegion(W, H, 512, []);
  const bin = Math.max(1, Math.floor(fr.w / 128));
  const bw = fr.w / bin;
  const fi = new Float64Array(bw * bw);
  const frame = new Uint16Array(W * H);

  for (const [name, s] of specimens) {
    it(`every measure decreases strictly over a Gaussian defocus series (sigma 0 -> 4 px): ${name}`, () => {
      const series: Record<string, number>[] = [];
      for (let sigma = 0; sigma <= 4; sigma += 0.5) {
        s.expose(s.renderClean(0.5, 0, { dx: 0, dy: 0, blur: sigma, gainFactor: 1 }), frame, 10);
        binRegion(frame, W, fr, bin, fi);
        series.push(focusMeasures(fi, bw, bw, ['dcts', 'tenengrad', 'laplacian_variance', 'brenner'], 3 / bin));
      }
      for (const m of ['dcts', 'tenengrad', 'laplacian_variance', 'brenner']) {
        for (let i = 1; i < series.length; i++) expect(series[i][m], `${m} at step ${i}`).toBeLessThan(series[i - 1][m]);
      }
    });
  }

  it('DCTS is invariant to intensity scaling', () => {
    const s = specimens[1][1];
    s.expose(s.renderClean(0.5, 0, { dx: 0, dy: 0, blur: 1, gainFactor: 1 }), frame, 10);
    binRegion(frame, W, fr, bin, fi);
    const a = dcts(fi, bw, bw, 3 / bin);
    const scaled = fi.map((v) => v * 7.25);
    expect(Math.abs(dcts(scaled, bw, bw, 3 / bin) - a) / a).toBeLessThan(1e-12);
  });
});

describe('saturation, exposure and percentiles', () => {
  function nearestRank(values: number[], p: number): number {
    const s = [...values].sort((a, b) => a - b);
    return s[Math.max(1, Math.ceil(p * s.length)) - 1];
  }

  it('counts saturated and under-exposed pixels exactly at 12 bit and 16 bit; percentiles exact', () => {
    const rnd = mulberry32(5);
    for (const [bits, level] of [
      [12, 4095],
      [16, 65535],
      [16, 60000],
    ] as const) {
      const n = 300 * 200;
      const px = new Uint16Array(n);
      let sat = 0;
      let under = 0;
      for (let i = 0; i < n; i++) {
        const u = rnd();
        px[i] =
          u < 0.01
            ? level + Math.floor(rnd() * ((1 << bits) - level))
            : u < 0.05
              ? Math.floor(rnd() * 101)
              : 101 + Math.floor(rnd() * (level - 101));
        if (px[i] >= level) sat++;
        if (px[i] <= 100) under++;
      }
      const st = frameStats(px, level, 100);
      expect(st.saturatedRatio).toBe(sat / n);
      expect(st.underexposedRatio).toBe(under / n);
      const vals = Array.from(px);
      expect(st.p001).toBe(nearestRank(vals, 0.001));
      expect(st.p50).toBe(nearestRank(vals, 0.5));
      expect(st.p999).toBe(nearestRank(vals, 0.999));
      expect(st.min).toBe(vals.reduce((a, b) => Math.min(a, b), 65535));
      expect(st.max).toBe(vals.reduce((a, b) => Math.max(a, b), 0));
      expect(st.mean).toBeCloseTo(vals.reduce((a, b) => a + b, 0) / n, 9);
      expect(st.histogram.reduce((a, b) => a + b, 0)).toBe(n); // values above the level land in the last bin
    }
  });
});

describe('frame timing', () => {
  it('fps and jitter are exact for scripted timestamps', () => {
    const w = new TimingWindow(100);
    const intervals = [0.01, 0.01, 0.012, 0.008, 0.01, 0.011, 0.009];
    let t = 0;
    w.add(t);
    for (const iv of intervals) w.add((t += iv * 1e9));
    const mean = intervals.reduce((a, b) => a + b, 0) / intervals.length;
    const sd = Math.sqrt(intervals.reduce((a, b) => a + (b - mean) ** 2, 0) / intervals.length);
    const got = w.get();
    expect(got.fps).toBeCloseTo(1 / mean, 6);
    expect(got.jitterSeconds).toBeCloseTo(sd, 9);
  });

  it('a scripted producer: fps, jitter and gaps reach the metrics exactly', async () => {
    const ring = shmPath('timing');
    cleanup.push(ring);
    const wr = RingWriter.create(ring, {
      width: 16,
      height: 16,
      dtype: 'uint16',
      bitDepth: 12,
      slotCount: 64,
      zPlanes: 1,
      channels: 1,
      views: 1,
    });
    wr.startAcquisition();
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { enabled: false } });
    try {
      await waitFor(() => app.pipeline.status().attached, 5000, 'attach');
      const px = new Uint8Array(16 * 16 * 2).fill(7);
      // 20 ms apart, every 5th interval 30 ms; counter skips 2 frames once and 1 frame once
      let ts = 1_700_000_000_000_000_000;
      let counter = 0;
      const ivs: number[] = [];
      for (let i = 0; i < 30; i++) {
        if (i > 0) {
          const iv = i % 5 === 0 ? 0.03 : 0.02;
          ivs.push(iv);
          ts += iv * 1e9;
        }
        if (i === 10) counter += 2;
        if (i === 20) counter += 1;
        wr.publish(px, { cameraCounter: counter++, timestampNs: ts, t: i, c: 0, z: 0, view: 0, flags: 0 });
      }
      await waitFor(() => (rec.events['frame-qc']?.length ?? 0) === 30, 5000, '30 frames');
      expect(rec.lost.gap).toBe(3);
      const mean = ivs.reduce((a, b) => a + b, 0) / ivs.length;
      const sd = Math.sqrt(ivs.reduce((a, b) => a + (b - mean) ** 2, 0) / ivs.length);
      const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      const val = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
      expect(val('spimstream_frame_rate_hertz')).toBeCloseTo(1 / mean, 3);
      expect(val('spimstream_frame_interval_jitter_seconds')).toBeCloseTo(sd, 6);
    } finally {
      await app.stop();
      wr.close();
    }
  });
});
