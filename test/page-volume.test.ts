/**
 * The third dimension in the page, in headless Chromium (WebGL2 through SwiftShader): a ring fed
 * with dark stacks holding one bright bead at a known voxel, then with the real LLSM bead stack. Opened by deep link, the orthogonal
 * views show the bead where geometry says in xy (at its z), xz and yz, and the 3-D rendering puts
 * it where the projection of its voxel falls, face on and turned 90° about y, in maximum intensity
 * and in alpha compositing (and twice as far out at zoom 2) — read from the canvases' own pixels.
 * The channel LUT colours the bead in the channel's colour in both kinds of view. No page error.
 */
import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { readTiffStack } from '../bench/tiff.js';
import { realStackPath } from '../bench/codec-bench.js';
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

type Cfg = Awaited<ReturnType<typeof startTestApp>>['cfg'];
interface Session {
  page: Page;
  port: number;
  cfg: Cfg;
  /** Resolves once the page has a volume to show. */
  volumeShown(): Promise<unknown>;
}

/**
 * A sidecar on a ring fed with the same stack again and again, one a second, as from a scope (each
 * redraws the views: SwiftShader renders on the CPU, and a faster pace kept it from ever finishing a
 * screenshot on a loaded machine), and a headless Chromium page; fails on any page error.
 */
async function session(
  g: { width: number; height: number; depth: number; plane: (z: number) => Uint16Array },
  body: (s: Session) => Promise<void>,
): Promise<void> {
  const ring = shmPath('page-volume');
  cleanup.push(ring, `${ring}.lock`, `${ring}.seen`);
  const w = RingWriter.create(ring, {
    width: g.width,
    height: g.height,
    dtype: 'uint16',
    bitDepth: 16,
    slotCount: 2 * g.depth,
    zPlanes: g.depth,
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
    producer = (async () => {
      for (let t = 0, n = 0; !stop; t++) {
        for (let z = 0; z < g.depth; z++, n++)
          w.publish(new Uint8Array(g.plane(z).buffer), { cameraCounter: n, timestampNs: Date.now() * 1e6, t, c: 0, z, view: 0, flags: 0 });
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const volumeShown = () =>
      page.waitForFunction(
        () => (window as unknown as { spimstream: { volume: { vol: unknown } } }).spimstream.volume.vol !== null,
        undefined,
        {
          timeout: 30_000,
        },
      );
    await body({ page, port: app.port, cfg, volumeShown });
    expect(errors).toEqual([]);
  } finally {
    stop = true;
    await producer;
    await browser?.close();
    await app.stop();
    w.close();
  }
}

/** Calls a method of the page's volume view (cursor, rotation, zoom, render mode). */
function view(page: Page, f: 'rotate' | 'zoomTo' | 'setRender' | 'cursor', arg: unknown): Promise<void> {
  return page.evaluate(
    ([fn, a]) => {
      const v = (window as unknown as { spimstream: { volume: Record<string, unknown> & { draw(): void } } }).spimstream.volume;
      if (fn === 'cursor') {
        v.cursor = { ...(a as object) };
        v.draw();
      } else (v[fn] as (x: unknown) => void)(a);
    },
    [f, arg] as const,
  );
}

/** Where a voxel's centre lands on the 3-D canvas: the box is scaled so its largest half-extent is 0.8. */
function projector(cfg: Cfg, v: { w: number; h: number; d: number; step: number }) {
  const ext = [v.w * cfg.pixel_size_um.x * v.step, v.h * cfg.pixel_size_um.y * v.step, v.d * cfg.pixel_size_um.z];
  const half = ext.map((e) => (0.8 * e) / Math.max(...ext));
  const clip = (i: number, n: number, hs: number) => ((i + 0.5) / n) * 2 * hs - hs;
  const toPx = (u: number, size: number) => ((u + 1) / 2) * size;
  return {
    /** Canvas x of voxel (x, z) seen at yaw 0 or pi/2, at a zoom; canvas y of row y. */
    x: (yaw: number, x: number, z: number, size: number, zoom = 1) =>
      toPx(zoom * (yaw === 0 ? clip(x, v.w, half[0]) : -clip(z, v.d, half[2])), size),
    y: (y: number, size: number) => toPx(clip(y, v.h, half[1]), size),
  };
}

/**
 * The orthogonal views' brightest pixels with the cursor on a voxel: xy at its z, xz and yz through
 * it (the crosshair off: drawn over the data, it dims the pixels under it).
 */
async function orthoBrightest(page: Page, at: { x: number; y: number; z: number }) {
  await page.uncheck('#ortho-cross');
  await view(page, 'cursor', at);
  return { xy: await brightest(page, 'ortho-xy'), xz: await brightest(page, 'ortho-xz'), yz: await brightest(page, 'ortho-yz') };
}

const shot = (name: string) => `${process.env.SPIMSTREAM_SCREENSHOTS ?? '/tmp'}/${name}.png`;

describe('orthogonal and 3-D views of the latest stack', () => {
  it('deep links open them; the bead is where geometry says in every view', async () => {
    await session({ width: W, height: H, depth: Z, plane: frame }, async ({ page, port, cfg, volumeShown }) => {
      const step = Math.ceil(W / 128);
      const bead = { x: Math.floor(BEAD.x / step), y: Math.floor(BEAD.y / step), z: BEAD.z };
      await page.goto(`http://127.0.0.1:${port}/?stream=GFP/0&view=ortho`);
      await volumeShown();
      expect(await page.isVisible('#ortho-xy')).toBe(true);
      expect(await page.isHidden('#view')).toBe(true);
      const o = await orthoBrightest(page, bead);
      expect([o.xy.x, o.xy.y, o.xy.w, o.xy.h]).toEqual([bead.x, bead.y, W / step, H / step]);
      expect([o.xz.x, o.xz.y, o.xz.h]).toEqual([bead.x, bead.z, Z]);
      expect([o.yz.x, o.yz.y, o.yz.w]).toEqual([bead.z, bead.y, Z]);
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

      await page.goto(`http://127.0.0.1:${port}/?stream=GFP/0&view=3d`);
      await volumeShown();
      expect(await page.isVisible('#vol3d')).toBe(true);
      const at = projector(cfg, { w: W / step, h: H / step, d: Z, step });
      for (const yaw of [0, Math.PI / 2]) {
        await view(page, 'rotate', yaw);
        const b = await brightest(page, 'vol3d');
        expect(b.v, `yaw ${yaw}: the bead is drawn`).toBeGreaterThan(600);
        expect(Math.abs(b.x - at.x(yaw, bead.x, bead.z, b.w)), `yaw ${yaw}: x ${b.x}`).toBeLessThanOrEqual(4);
        // Rows: image row 0 at the top, whatever the turn about y.
        expect(Math.abs(b.y - at.y(bead.y, b.h)), `yaw ${yaw}: y ${b.y}`).toBeLessThanOrEqual(4);
      }
      // Zoom 2, face on: the bead twice as far from the centre.
      await view(page, 'rotate', 0);
      await view(page, 'zoomTo', 2);
      const zoomed = await brightest(page, 'vol3d');
      expect(Math.abs(zoomed.x - at.x(0, bead.x, bead.z, zoomed.w, 2)), `zoom 2: x ${zoomed.x}`).toBeLessThanOrEqual(6);
      await page.screenshot({ path: shot('spimstream-3d') });
      await view(page, 'zoomTo', 1);

      // The channel's colour in every view: the bead at the top of the window is the colour itself.
      const hex = cfg.channels[0].color;
      const rgb = [0, 2, 4].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
      await page.selectOption('#lut', 'channel');
      expect((await brightest(page, 'vol3d')).rgb, `3-D MIP in ${hex}`).toEqual(rgb);
      await page.check('input[name=kind][value=ortho]');
      // xy at the bead's plane, the crosshair away from the bead (it is drawn over the data); the
      // bead's own pixel read.
      await view(page, 'cursor', { x: 0, y: 0, z: bead.z });
      const beadRgb = await page.evaluate(
        ([x, y]) => [
          ...(document.getElementById('ortho-xy') as HTMLCanvasElement).getContext('2d')!.getImageData(x, y, 1, 1).data.slice(0, 3),
        ],
        [bead.x, bead.y] as const,
      );
      expect(beadRgb, `ortho xy in ${hex}`).toEqual(rgb);

      // Alpha compositing, reached by deep link: the bead where geometry says, from the front and the side.
      await page.goto(`http://127.0.0.1:${port}/?stream=GFP/0&view=3d&render=alpha`);
      await volumeShown();
      expect(await page.inputValue('#render3d')).toBe('alpha');
      for (const yaw of [0, Math.PI / 2]) {
        await view(page, 'rotate', yaw);
        const b = await brightest(page, 'vol3d');
        // One voxel 80 % opaque over a transparent background: ~0.8 of full grey whatever the side.
        expect(b.v / 765, `alpha, yaw ${yaw}: the bead's brightness`).toBeGreaterThan(0.6);
        expect(b.v / 765, `alpha, yaw ${yaw}: the bead's brightness`).toBeLessThan(0.95);
        expect(Math.abs(b.x - at.x(yaw, bead.x, bead.z, b.w)), `alpha, yaw ${yaw}: x ${b.x}`).toBeLessThanOrEqual(4);
        expect(Math.abs(b.y - at.y(bead.y, b.h)), `alpha, yaw ${yaw}: y ${b.y}`).toBeLessThanOrEqual(4);
      }
      await page.screenshot({ path: shot('spimstream-3d-alpha') });
    });
  }, 120_000);

  it('the real LLSM bead stack: its brightest voxel where the raw stack has it, in every view', async () => {
    const stack = readTiffStack(realStackPath());
    const [w, h, d] = [stack.width, stack.height, stack.pages.length];
    expect([w, h, d]).toEqual([128, 128, 61]);
    // The reference, from the raw TIFF pages: the stack's range and every voxel at its maximum (this
    // stack has two, in planes 30 and 31: a projection may show either).
    let peak = { x: 0, y: 0, z: 0, v: -1 };
    let lo = 65535;
    stack.pages.forEach((p, z) => {
      for (let i = 0; i < p.length; i++) {
        if (p[i] > peak.v) peak = { x: i % w, y: Math.floor(i / w), z, v: p[i] };
        lo = Math.min(lo, p[i]);
      }
    });
    const peaks: { x: number; y: number; z: number }[] = [];
    stack.pages.forEach((p, z) => {
      for (let i = 0; i < p.length; i++) if (p[i] === peak.v) peaks.push({ x: i % w, y: Math.floor(i / w), z });
    });
    await session(
      { width: w, height: h, depth: d, plane: (z) => stack.pages[z] as Uint16Array },
      async ({ page, port, cfg, volumeShown }) => {
        // The stack's own range as the window: only the peak reaches the top of it.
        await page.goto(`http://127.0.0.1:${port}/?stream=GFP/0&view=ortho`);
        await volumeShown();
        await page.fill('#lo', String(lo));
        await page.fill('#hi', String(peak.v));
        await page.dispatchEvent('#hi', 'change');
        await page.waitForFunction(
          (want) => document.getElementById('volinfo')?.textContent?.includes(want),
          `window ${lo}–${peak.v} ADU`,
          {
            timeout: 30_000,
          },
        );
        const o = await orthoBrightest(page, peak);
        expect([o.xy.x, o.xy.y], 'xy').toEqual([peak.x, peak.y]);
        expect([o.xz.x, o.xz.y], 'xz').toEqual([peak.x, peak.z]);
        expect([o.yz.x, o.yz.y], 'yz').toEqual([peak.z, peak.y]);
        await page.screenshot({ path: shot('spimstream-ortho-llsm') });
        await page.check('input[name=kind][value="3d"]');
        const at = projector(cfg, { w, h, d, step: 1 });
        for (const yaw of [0, Math.PI / 2]) {
          await view(page, 'rotate', yaw);
          const b = await brightest(page, 'vol3d');
          expect(b.v, `yaw ${yaw}: the peak at the top of the window`).toBe(765);
          // Within a voxel of where one of the maximal voxels projects.
          const off = Math.min(...peaks.map((q) => Math.max(Math.abs(b.x - at.x(yaw, q.x, q.z, b.w)), Math.abs(b.y - at.y(q.y, b.h)))));
          expect(off, `yaw ${yaw}: (${b.x}, ${b.y}) from the nearest peak's projection (${JSON.stringify(peaks)})`).toBeLessThanOrEqual(5);
        }
        await page.screenshot({ path: shot('spimstream-3d-llsm') });
      },
    );
  }, 120_000);
});
