import { describe, expect, it } from 'vitest';
import { histogramToTiles, chunkBytesOf, type TileGeometry } from '../workers/kernels/tiles.js';
import { binMaxPlaneSimd, histogramRows, histogramToTilesSimd, simdApplies, simdUnavailableReason } from '../workers/kernels/tiles-simd.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import { readTiffStack } from '../bench/tiff.js';
import { realStackPath } from '../bench/codec-bench.js';
import { runFrameTask } from '../workers/frame-task.js';
import { binMaxPlane } from '../workers/kernels/preview.js';
import { qcParamsFromConfig } from '../src/pipeline/qc-dispatch.js';
import { DEFAULT_CONFIG } from '../src/config/config.js';

// The WebAssembly SIMD pass must produce the JS kernel's bytes exactly: the histogram, every byte of
// the z-block (including planes of a reused block and edge tiles), and the non-zero tile flags.

function geometry(w: number, h: number, cz: number, cy: number, cx: number): TileGeometry {
  return { width: w, height: h, bytesPerPixel: 2, cz, cy, cx, tilesX: Math.ceil(w / cx), tilesY: Math.ceil(h / cy), shuffled: true };
}

/** Runs both kernels on the same planes into two blocks (reused: filled with stale bytes first) and compares. */
function compare(frames: Uint16Array[], g: TileGeometry): void {
  const ntiles = g.tilesX * g.tilesY;
  const a = new SharedArrayBuffer(ntiles * chunkBytesOf(g));
  const b = new SharedArrayBuffer(ntiles * chunkBytesOf(g));
  new Uint8Array(a).fill(0x5a);
  new Uint8Array(b).fill(0x5a);
  const nzA = new Uint8Array(ntiles);
  const nzB = new Uint8Array(ntiles);
  frames.forEach((f, z) => {
    expect(simdApplies(f, g)).toBe(true);
    const hist = new Uint32Array(65536);
    histogramToTiles(f, hist, a, z % g.cz, g, nzA);
    const got = histogramToTilesSimd(f, b, z % g.cz, g, nzB);
    expect(
      Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(hist.buffer)),
      `histogram of plane ${z}`,
    ).toBe(0);
  });
  expect(Buffer.compare(Buffer.from(new Uint8Array(b)), Buffer.from(new Uint8Array(a))), 'z-block bytes').toBe(0);
  expect([...nzB]).toEqual([...nzA]);
}

function randomFrame(w: number, h: number, rnd: () => number, zeroCols = 0): Uint16Array {
  const f = new Uint16Array(new SharedArrayBuffer(w * h * 2));
  for (let y = 0; y < h; y++) {
    for (let x = zeroCols; x < w; x++) {
      // camera-like background with rare bright and full-range values (exercises both byte planes)
      const r = rnd();
      f[y * w + x] = r < 0.01 ? (rnd() * 65536) | 0 : 100 + ((rnd() * 60) | 0);
    }
  }
  return f;
}

describe('WebAssembly SIMD fused histogram + shuffle', () => {
  it('is built and loads in this runtime', () => {
    expect(simdUnavailableReason()).toBe('');
  });

  it('equals the JS kernel on random frames: whole tiles, partial edge tiles in x and y, an all-zero tile, tiles taller than one kernel call', () => {
    const rnd = mulberry32(11);
    for (const [w, h, cz, cy, cx, zeroCols] of [
      [128, 96, 3, 32, 64, 0],
      [176, 70, 4, 32, 64, 64],
      [48, 48, 2, 48, 48, 0],
      [2048, 40, 2, 16, 256, 0],
      [256, 300, 2, 256, 128, 0],
      [64, 200, 2, 160, 64, 0],
    ]) {
      const g = geometry(w, h, cz, cy, cx);
      compare(
        Array.from({ length: cz + 1 }, () => randomFrame(w, h, rnd, zeroCols)),
        g,
      );
    }
  });

  it('equals the JS kernel on every plane of the real LLSM stack', () => {
    const stack = readTiffStack(realStackPath());
    const frames = stack.pages.map((p) => {
      const f = new Uint16Array(new SharedArrayBuffer(p.byteLength));
      f.set(p);
      return f;
    });
    expect(frames.length).toBe(61);
    compare(frames, geometry(stack.width, stack.height, 32, 64, 64));
  });

  it('the live volume binned in the same pass equals binMaxPlane: steps that do and do not divide the strips, tiles and frame', () => {
    const rnd = mulberry32(23);
    const real = readTiffStack(realStackPath());
    const realPlane = (z: number) => {
      const f = new Uint16Array(new SharedArrayBuffer(real.pages[z].byteLength));
      f.set(real.pages[z]);
      return f;
    };
    const cases: [Uint16Array, TileGeometry, number][] = [
      [randomFrame(128, 96, rnd), geometry(128, 96, 2, 32, 64), 8],
      [randomFrame(176, 70, rnd, 64), geometry(176, 70, 2, 32, 64), 3],
      [randomFrame(256, 300, rnd), geometry(256, 300, 2, 256, 128), 7],
      [randomFrame(2048, 40, rnd), geometry(2048, 40, 2, 16, 256), 16],
      [randomFrame(64, 200, rnd), geometry(64, 200, 2, 160, 64), 1],
      [randomFrame(48, 48, rnd), geometry(48, 48, 2, 48, 48), 64],
      [randomFrame(208, 50, rnd), geometry(208, 50, 2, 32, 64), 24],
      [randomFrame(256, 64, rnd), geometry(256, 64, 2, 64, 256), 16],
      [realPlane(30), geometry(real.width, real.height, 32, 64, 64), 2],
      [realPlane(10), geometry(real.width, real.height, 32, 64, 64), 5],
    ];
    for (const [f, g, step] of cases) {
      const n = Math.ceil(g.width / step) * Math.ceil(g.height / step);
      const want = new Uint16Array(n);
      binMaxPlane(f, g.width, g.height, step, want);
      // Stale values in the output must not survive: every bin is written.
      const got = new Uint16Array(n).fill(0xbeef);
      const block = new SharedArrayBuffer(g.tilesX * g.tilesY * chunkBytesOf(g));
      histogramToTilesSimd(f, block, 0, g, new Uint8Array(g.tilesX * g.tilesY), 1, { step, out: got });
      expect(Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer)), `${g.width}x${g.height} step ${step}`).toBe(0);
      expect(Math.max(...want), `${g.width}x${g.height} has signal`).toBeGreaterThan(0);
    }
  });

  it('the live volume binned alone (frames off the stored path) equals binMaxPlane; widths not a multiple of 8 are left to JS', () => {
    const rnd = mulberry32(31);
    const real = readTiffStack(realStackPath());
    const cases: [Uint16Array, number, number, number][] = [
      [randomFrame(8, 5, rnd), 8, 5, 1],
      [randomFrame(24, 70, rnd), 24, 70, 3],
      [randomFrame(200, 131, rnd), 200, 131, 8],
      [randomFrame(328, 97, rnd), 328, 97, 16],
      [randomFrame(64, 200, rnd), 64, 200, 64],
      [Uint16Array.from(real.pages[30]), real.width, real.height, 2],
    ];
    for (const [f, w, h, step] of cases) {
      const n = Math.ceil(w / step) * Math.ceil(h / step);
      const want = new Uint16Array(n);
      binMaxPlane(f, w, h, step, want);
      const got = new Uint16Array(n).fill(0xbeef);
      expect(binMaxPlaneSimd(f, w, h, { step, out: got }), `${w}x${h}`).toBe(true);
      expect(Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer)), `${w}x${h} step ${step}`).toBe(0);
    }
    expect(binMaxPlaneSimd(randomFrame(30, 4, rnd), 30, 4, { step: 2, out: new Uint16Array(30) })).toBe(false);
  });

  it('sampled QC: the histogram holds exactly every 4th row, the z-block every byte', () => {
    const rnd = mulberry32(5);
    for (const [w, h, cy, cx] of [
      [256, 300, 256, 128],
      [64, 37, 16, 64],
    ]) {
      const g = geometry(w, h, 2, cy, cx);
      const f = randomFrame(w, h, rnd);
      const a = new SharedArrayBuffer(g.tilesX * g.tilesY * chunkBytesOf(g));
      const b = new SharedArrayBuffer(a.byteLength);
      const nzA = new Uint8Array(g.tilesX * g.tilesY);
      const nzB = new Uint8Array(g.tilesX * g.tilesY);
      histogramToTiles(f, new Uint32Array(65536), a, 1, g, nzA);
      const got = histogramToTilesSimd(f, b, 1, g, nzB, 4);
      const want = new Uint32Array(65536);
      for (let y = 0; y < h; y += 4) for (let x = 0; x < w; x++) want[f[y * w + x]]++;
      expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer))).toBe(0);
      expect(got.reduce((s, v) => s + v, 0)).toBe(histogramRows(h, 4) * w);
      expect(Buffer.compare(Buffer.from(new Uint8Array(b)), Buffer.from(new Uint8Array(a))), 'z-block bytes').toBe(0);
      expect([...nzB]).toEqual([...nzA]);
    }
  });

  it('a sampled stored frame reports intensity and saturation of the rows it counted (every 4th), its storage is whole', () => {
    const w = 128;
    const h = 64;
    const g = geometry(w, h, 1, 64, 128);
    const f = new Uint16Array(new SharedArrayBuffer(w * h * 2));
    // rows 0, 4, 8, ... hold 1000 with every 8th pixel saturated; all other rows 200
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = y % 4 === 0 ? (x % 8 === 0 ? 4095 : 1000) : 200;
    const run = (sampled: boolean) => {
      const block = new SharedArrayBuffer(chunkBytesOf(g));
      const r = runFrameTask({
        kind: 'frame',
        frames: f.buffer as SharedArrayBuffer,
        frameOffset: 0,
        width: w,
        height: h,
        bytesPerPixel: 2,
        saturationLevel: 4095,
        offset: 100,
        qc: qcParamsFromConfig(DEFAULT_CONFIG),
        sampled,
        drift: false,
        driftReference: null,
        driftRefreshReference: false,
        mip: null,
        mipStep: 1,
        store: { block, nonZero: new SharedArrayBuffer(1), z: 0, geometry: g, simd: true },
      });
      return { qc: r.qc, block };
    };
    const full = run(false);
    const sampled = run(true);
    expect(full.qc.saturatedRatio).toBeCloseTo(1 / 32, 12);
    expect(full.qc.mean).toBeCloseTo(((4095 + 7 * 1000) / 8 + 3 * 200) / 4, 9);
    expect(sampled.qc.sampled).toBe(true);
    expect(sampled.qc.saturatedRatio).toBeCloseTo(1 / 8, 12);
    expect(sampled.qc.mean).toBeCloseTo((4095 + 7 * 1000) / 8, 9);
    expect(Buffer.compare(Buffer.from(new Uint8Array(sampled.block)), Buffer.from(new Uint8Array(full.block)))).toBe(0);
  });

  it('is not used where it does not apply (odd widths, uint8, plain layout): the JS kernel handles those', () => {
    const f = new Uint16Array(new SharedArrayBuffer(40 * 8 * 2));
    expect(simdApplies(f, geometry(40, 8, 1, 8, 40))).toBe(false);
    expect(simdApplies(f, { ...geometry(32, 10, 1, 8, 32), shuffled: false })).toBe(false);
    expect(simdApplies(new Uint8Array(64), { ...geometry(32, 2, 1, 2, 32), bytesPerPixel: 1 })).toBe(false);
  });
});
