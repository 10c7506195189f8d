import { describe, expect, it } from 'vitest';
import { binMean, percentileWindow, saturatedIndices, toByte } from '../workers/kernels/preview.js';
import { previewSimd, previewSimdApplies } from '../workers/kernels/preview-simd.js';
import { runPreviewTask } from '../workers/preview-task.js';
import type { PreviewTask } from '../workers/tasks.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import { readTiffStack } from '../bench/tiff.js';
import { realStackPath } from '../bench/codec-bench.js';

// The WebAssembly SIMD preview must give the JS kernels' bytes, window and saturated cells exactly.

/** The JS path: binMean (bin 2), percentileWindow or the window, toByte, saturatedIndices. */
function reference(px: Uint16Array, w: number, h: number, window: [number, number] | null, clip: number, level: number, cap: number) {
  const on = (w / 2) * (h / 2);
  const img = new Uint16Array(on);
  const max = new Uint16Array(on);
  binMean(px, w, h, 2, img, max);
  const [lo, hi] = window ?? percentileWindow(img, on, clip);
  const bytes = new Uint8Array(on);
  toByte(img, on, lo, hi, bytes);
  return { bytes, lo, hi, saturated: saturatedIndices(max, on, level, cap) };
}

function same(
  px: Uint16Array,
  w: number,
  h: number,
  window: [number, number] | null,
  clip: number,
  level: number,
  cap: number,
  what: string,
) {
  expect(previewSimdApplies(w, h, 2, 2), `${what}: the SIMD kernel applies`).toBe(true);
  const want = reference(px, w, h, window, clip, level, cap);
  const got = previewSimd(px, w, h, window, clip, level, cap);
  expect([got.lo, got.hi], `${what}: window`).toEqual([want.lo, want.hi]);
  expect(Buffer.compare(Buffer.from(got.bytes), Buffer.from(want.bytes)), `${what}: bytes`).toBe(0);
  expect([...(got.saturated ?? [])], `${what}: saturated cells`).toEqual([...want.saturated]);
}

/** A camera-like frame: offset and shot noise, bright blobs, a flat run, some saturated pixels. */
function frame(w: number, h: number, seed: number): Uint16Array {
  const rnd = mulberry32(seed);
  const px = new Uint16Array(w * h);
  for (let i = 0; i < px.length; i++) px[i] = 100 + Math.floor(rnd() * 40);
  for (let b = 0; b < 20; b++) {
    const cx = Math.floor(rnd() * w);
    const cy = Math.floor(rnd() * h);
    const amp = 200 + rnd() * 60000;
    for (let y = Math.max(0, cy - 6); y < Math.min(h, cy + 6); y++)
      for (let x = Math.max(0, cx - 6); x < Math.min(w, cx + 6); x++)
        px[y * w + x] = Math.min(65535, px[y * w + x] + amp * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 8));
  }
  px.fill(4095, 3 * w, 3 * w + 17); // a saturated streak (12-bit camera)
  px.fill(65535, w * (h - 1) + 1, w * h); // the last row at the 16-bit top
  return px;
}

describe('SIMD preview kernel', () => {
  it('matches the JS kernels bit-exact: sizes, windows, clip levels, saturation levels and the cap', () => {
    for (const [w, h] of [
      [2048, 2048],
      [160, 98],
      [16, 2],
    ]) {
      const px = frame(w, h, w + h);
      for (const clip of [0.1, 0, 5]) same(px, w, h, null, clip, 4095, 1 << 16, `${w}x${h} clip ${clip}`);
      // Client windows: narrow, wide, fractional, empty (hi = lo), inverted.
      for (const win of [
        [120, 130],
        [0, 65535],
        [99.5, 4000.25],
        [140, 140],
        [500, 100],
      ] as [number, number][])
        same(px, w, h, win, 0.1, 4095, 1 << 16, `${w}x${h} window ${win}`);
      for (const level of [0, 1, 4095, 4095.5, 65535, 70000, -3]) same(px, w, h, null, 0.1, level, 1 << 16, `${w}x${h} level ${level}`);
      same(px, w, h, null, 0.1, 4095, 3, `${w}x${h} cap 3`);
    }
  });

  it('matches on real LLSM frames (every 10th plane of the raw stack)', () => {
    const stack = readTiffStack(realStackPath());
    expect(stack.bitsPerSample).toBe(16);
    for (let z = 0; z < stack.pages.length; z += 10) {
      const px = stack.pages[z] as Uint16Array;
      same(px, stack.width, stack.height, null, 0.1, 1000, 1 << 16, `plane ${z}`);
    }
  });

  it('the preview task gives the same preview with and without it (JPEG, raw, a MIP untouched)', async () => {
    const w = 256;
    const h = 128;
    const px = frame(w, h, 7);
    const frames = new SharedArrayBuffer(px.byteLength + 64);
    new Uint16Array(frames, 64, w * h).set(px);
    const task = (simd: boolean, format: string): PreviewTask => ({
      kind: 'preview',
      frames,
      frameOffset: 64,
      width: w,
      height: h,
      bytesPerPixel: 2,
      isMip: false,
      saturationLevel: 4095,
      maxSize: 128,
      format,
      quality: 80,
      clipPercent: 0.1,
      window: null,
      simd,
    });
    for (const format of ['raw', 'jpeg']) {
      const js = await runPreviewTask(task(false, format));
      const simd = await runPreviewTask(task(true, format));
      expect([simd.width, simd.height, simd.lo, simd.hi], format).toEqual([js.width, js.height, js.lo, js.hi]);
      expect(Buffer.compare(Buffer.from(simd.data), Buffer.from(js.data)), `${format} bytes`).toBe(0);
      expect([...simd.saturated], format).toEqual([...js.saturated]);
      expect(simd.saturated.length, 'the streak and the top row are marked').toBeGreaterThan(0);
    }
  });
});
