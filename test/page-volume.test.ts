/**
 * The third dimension in the page, in headless Chromium (WebGL2 through SwiftShader): a ring fed
 * with dark stacks holding one bright bead at a known voxel. Opened by deep link, the orthogonal
 * views show the bead where geometry says in xy (at its z), xz and yz, and the 3-D rendering puts
 * it where the projection of its voxel falls, face on and turned 90° about y, in maximum intensity
 * and in alpha compositing (and twice as far out at zoom 2) — read from the canvases' own pixels.
 * The channel LUT colours the bead in the channel's colour in both kinds of view. No page error.
 */
import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { shmPath, startTestApp, waitFor } from './helpers.js';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--no-first-run',
  '--disable-background-networking',
];
const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true });
});

const W = 256;
const H = 192;
const Z = 24;
const BEAD = { x: 180, y: 50, z: 17 };

function frame(z: number): Uint16Array {
  const px = new Uint16Array(W * H).fill(100);
  // 2 x 2 pixels, aligned with the 2 x 2 binning: one voxel.
  if (z === BEAD.z) for (let dy = 0; dy <= 1; dy++) for (let dx = 0; dx <= 1; dx++) px[(BEAD.y + dy) * W + BEAD.x + dx] = 20000;
  return px;
}

/** The brightest pixel of a canvas (2-D or WebGL2): where, its R + G + B, and its colour. */
function brightest(page: Page, id: string): Promise<{ x: number; y: number; v: number; rgb: number[]; w: number; h: number }> {
  return page.evaluate((cid) => {
    const c = document.getElementById(cid) as HTMLCanvasElement;
    let data: Uint8ClampedArray | Uint8Array;
    let flip = false;
    const gl = c.getContext('webgl2') as WebGL2RenderingContext | null;
    if (gl && cid === 'vol3d') {
      data = new Uint8Array(c.width * c.height * 4);
      gl.readPixels(0, 0, c.width, c.height, gl.RGBA, gl.UNSIGNED_BYTE, data);
      flip = true; // readPixels starts at the bottom row
    } else data = (c.getContext('2d') as CanvasRenderingContext2D).getImageData(0, 0, c.width, c.height).data;
    let best = { x: -1, y: -1, v: -1, rgb: [0, 0, 0] };
    for (let y = 0; y < c.height; y++)
      for (let x = 0; x < c.width; x++) {
        const i = 4 * (y * c.width + x);
        const v = data[i] + data[i + 1] + data[i + 2];
        if (v > best.v) best = { x, y: flip ? c.height - 1 - y : y, v, rgb: [data[i], data[i + 1], data[i + 2]] };
      }
    return { ...best, w: c.width, h: c.height };
  }, id);
}

describe('orthogonal and 3-D views of the latest stack', () => {
  it('deep links open them; the bead is where geometry says in every view', async () => {
    const ring = shmPath('page-volume');
    cleanup.push(ring, `${ring}.lock`, `${ring}.seen`);
    const w = RingWriter.create(ring, {
      width: W,
      height: H,
      dtype: 'uint16',
      bitDepth: 16,
      slotCount: 64,
      zPlanes: Z,
      channels: 1,
      views: 1,
    });
    const { app, cfg } = await startTestApp({ source: `shm:${ring}`, storage: { enabled: false }, preview: { volume_max: 128 } });
    let browser: Browser | null = null;
    let stop = false;
    let producer: Promise<void> | null = null;
    const errors: string[] = [];
    try {
      await waitFor(() => app.pipeline.status().attached, 30_000, 'the sidecar to attach');
      w.startAcquisition();
      // Stacks keep coming, one a second, as from a scope (each redraws the views: SwiftShader renders on
      // the CPU, and a faster pace kept it from ever finishing a screenshot on a loaded machine).
      producer = (async () => {
        for (let t = 0, n = 0; !stop; t++) {
          for (let z = 0; z < Z; z++, n++)
            w.publish(new Uint8Array(frame(z).buffer), { cameraCounter: n, timestampNs: Date.now() * 1e6, t, c: 0, z, view: 0, flags: 0 });
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      const step = Math.ceil(W / 128);
      const bead = { x: Math.floor(BEAD.x / step), y: Math.floor(BEAD.y / step), z: BEAD.z };
      const volumeShown = () =>
        page.waitForFunction(
          () => (window as unknown as { spimstream: { volume: { vol: unknown } } }).spimstream.volume.vol !== null,
          undefined,
          {
            timeout: 30_000,
          },
        );

      await page.goto(`http://127.0.0.1:${app.port}/?stream=GFP/0&view=ortho`);
      await volumeShown();
      expect(await page.isVisible('#ortho-xy')).toBe(true);
      expect(await page.isHidden('#view')).toBe(true);
      // xy at the bead's plane; xz and yz through the crosshair set on the bead in xy.
      await page.evaluate((b) => {
        const v = (window as unknown as { spimstream: { volume: { cursor: object; draw(): void } } }).spimstream.volume;
        v.cursor = { ...b };
        v.draw();
      }, bead);
      const xy = await brightest(page, 'ortho-xy');
      expect([xy.x, xy.y, xy.w, xy.h]).toEqual([bead.x, bead.y, W / step, H / step]);
      const xz = await brightest(page, 'ortho-xz');
      expect([xz.x, xz.y, xz.h]).toEqual([bead.x, bead.z, Z]);
      const yz = await brightest(page, 'ortho-yz');
      expect([yz.x, yz.y, yz.w]).toEqual([bead.z, bead.y, Z]);
      // Physical aspect: xz is as wide as xy, and its height is the stack's depth in µm at the same scale.
      const css = await page.evaluate(() =>
        ['ortho-xy', 'ortho-xz'].map((id) => {
          const r = (document.getElementById(id) as HTMLCanvasElement).getBoundingClientRect();
          return [r.width, r.height];
        }),
      );
      const umPerCssPx = ((W / step) * cfg.pixel_size_um.x * step) / css[0][0];
      expect(css[1][0]).toBeCloseTo(css[0][0], 0);
      expect(css[1][1]).toBeCloseTo((Z * cfg.pixel_size_um.z) / umPerCssPx, -0.5);

      await page.goto(`http://127.0.0.1:${app.port}/?stream=GFP/0&view=3d`);
      await volumeShown();
      expect(await page.isVisible('#vol3d')).toBe(true);
      // Where a voxel lands: the box is scaled so its largest half-extent is 0.8 (clip space).
      const v = { w: W / step, h: H / step, d: Z };
      const ext = [v.w * cfg.pixel_size_um.x * step, v.h * cfg.pixel_size_um.y * step, v.d * cfg.pixel_size_um.z];
      const half = ext.map((e) => (0.8 * e) / Math.max(...ext));
      const clip = (i: number, n: number, hs: number) => ((i + 0.5) / n) * 2 * hs - hs; // voxel centre, box coordinates
      const toPx = (u: number, size: number) => ((u + 1) / 2) * size;
      for (const [yaw, wantX] of [
        [0, clip(bead.x, v.w, half[0])],
        [Math.PI / 2, -clip(bead.z, v.d, half[2])],
      ] as const) {
        await page.evaluate(
          (a) => (window as unknown as { spimstream: { volume: { rotate(y: number): void } } }).spimstream.volume.rotate(a),
          yaw,
        );
        const b = await brightest(page, 'vol3d');
        expect(b.v, `yaw ${yaw}: the bead is drawn`).toBeGreaterThan(600);
        expect(Math.abs(b.x - toPx(wantX, b.w)), `yaw ${yaw}: x ${b.x} vs ${toPx(wantX, b.w).toFixed(1)}`).toBeLessThanOrEqual(4);
        // Rows: image row 0 at the top, whatever the turn about y.
        expect(Math.abs(b.y - toPx(clip(bead.y, v.h, half[1]), b.h)), `yaw ${yaw}: y ${b.y}`).toBeLessThanOrEqual(4);
      }
      type View = { rotate(y: number): void; zoomTo(z: number): void; setRender(r: string): void };
      const view = (f: string, arg: number | string) =>
        page.evaluate(
          ([fn, a]) => {
            const v = (window as unknown as { spimstream: { volume: View } }).spimstream.volume;
            if (fn === 'rotate') v.rotate(a as number);
            else if (fn === 'zoomTo') v.zoomTo(a as number);
            else v.setRender(a as string);
          },
          [f, arg] as const,
        );
      // Zoom 2, face on: the bead twice as far from the centre.
      await view('rotate', 0);
      await view('zoomTo', 2);
      const zoomed = await brightest(page, 'vol3d');
      expect(Math.abs(zoomed.x - toPx(2 * clip(bead.x, v.w, half[0]), zoomed.w)), `zoom 2: x ${zoomed.x}`).toBeLessThanOrEqual(6);
      await page.screenshot({ path: `${process.env.SPIMSTREAM_SCREENSHOTS ?? '/tmp'}/spimstream-3d.png` });
      await view('zoomTo', 1);

      // The channel's colour in every view: the bead at the top of the window is the colour itself.
      const hex = cfg.channels[0].color;
      const rgb = [0, 2, 4].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
      await page.selectOption('#lut', 'channel');
      const coloured = await brightest(page, 'vol3d');
      expect(coloured.rgb, `3-D MIP in ${hex}`).toEqual(rgb);
      await page.check('input[name=kind][value=ortho]');
      // xy at the bead's plane, the crosshair away from the bead (it is drawn over the data); the
      // bead's own pixel read.
      await page.evaluate((b) => {
        const v = (window as unknown as { spimstream: { volume: { cursor: object; draw(): void } } }).spimstream.volume;
        v.cursor = { x: 0, y: 0, z: b.z };
        v.draw();
      }, bead);
      const beadRgb = await page.evaluate(
        ([x, y]) => [
          ...(document.getElementById('ortho-xy') as HTMLCanvasElement).getContext('2d')!.getImageData(x, y, 1, 1).data.slice(0, 3),
        ],
        [bead.x, bead.y] as const,
      );
      expect(beadRgb, `ortho xy in ${hex}`).toEqual(rgb);

      // Alpha compositing, reached by deep link: the bead where geometry says, from the front and the side.
      await page.goto(`http://127.0.0.1:${app.port}/?stream=GFP/0&view=3d&render=alpha`);
      await volumeShown();
      expect(await page.inputValue('#render3d')).toBe('alpha');
      for (const [yaw, wantX] of [
        [0, clip(bead.x, v.w, half[0])],
        [Math.PI / 2, -clip(bead.z, v.d, half[2])],
      ] as const) {
        await view('rotate', yaw);
        const b = await brightest(page, 'vol3d');
        // One voxel 80 % opaque over a transparent background: ~0.8 of full grey whatever the side.
        expect(b.v / 765, `alpha, yaw ${yaw}: the bead's brightness`).toBeGreaterThan(0.6);
        expect(b.v / 765, `alpha, yaw ${yaw}: the bead's brightness`).toBeLessThan(0.95);
        expect(Math.abs(b.x - toPx(wantX, b.w)), `alpha, yaw ${yaw}: x ${b.x} vs ${toPx(wantX, b.w).toFixed(1)}`).toBeLessThanOrEqual(4);
        expect(Math.abs(b.y - toPx(clip(bead.y, v.h, half[1]), b.h)), `alpha, yaw ${yaw}: y ${b.y}`).toBeLessThanOrEqual(4);
      }
      await page.screenshot({ path: `${process.env.SPIMSTREAM_SCREENSHOTS ?? '/tmp'}/spimstream-3d-alpha.png` });
      expect(errors).toEqual([]);
    } finally {
      stop = true;
      await producer;
      await browser?.close();
      await app.stop();
      w.close();
    }
  }, 120_000);
});
