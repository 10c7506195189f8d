import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { histogramToTiles, chunkBytesOf, type TileGeometry } from '../workers/kernels/tiles.js';
import { histogramToTilesSimd, simdApplies, simdUnavailableReason } from '../workers/kernels/tiles-simd.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import { readTiffStack } from '../bench/tiff.js';
import { ROOT } from './helpers.js';

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
    expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(hist.buffer)), `histogram of plane ${z}`).toBe(0);
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
    for (const [w, h, cz, cy, cx, zeroCols] of [[128, 96, 3, 32, 64, 0], [176, 70, 4, 32, 64, 64], [48, 48, 2, 48, 48, 0], [2048, 40, 2, 16, 256, 0], [256, 300, 2, 256, 128, 0], [64, 200, 2, 160, 64, 0]]) {
      const g = geometry(w, h, cz, cy, cx);
      compare(Array.from({ length: cz + 1 }, () => randomFrame(w, h, rnd, zeroCols)), g);
    }
  });

  it('equals the JS kernel on every plane of the real LLSM stack', () => {
    const stack = readTiffStack(path.join(ROOT, '..', 'shared', 'data', 'real', 'llsm-bead-psf-61x128x128.tif'));
    const frames = stack.pages.map((p) => {
      const f = new Uint16Array(new SharedArrayBuffer(p.byteLength));
      f.set(p);
      return f;
    });
    expect(frames.length).toBe(61);
    compare(frames, geometry(stack.width, stack.height, 32, 64, 64));
  });

  it('is not used where it does not apply (odd widths, uint8, plain layout): the JS kernel handles those', () => {
    const f = new Uint16Array(new SharedArrayBuffer(40 * 8 * 2));
    expect(simdApplies(f, geometry(40, 8, 1, 8, 40))).toBe(false);
    expect(simdApplies(f, { ...geometry(32, 10, 1, 8, 32), shuffled: false })).toBe(false);
    expect(simdApplies(new Uint8Array(64), { ...geometry(32, 2, 1, 2, 32), bytesPerPixel: 1 })).toBe(false);
  });
});
