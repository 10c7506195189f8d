import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { ROOT, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('the live page in headless Chromium', () => {
  it('shows a changing image, updating time-axis plots kept over a reload, fps per stream and in total, the saturation banner, and round-trips the metadata form into the store', async () => {
    const out = tmpDir('e2e');
    const { app } = await startTestApp({
      source: 'sim',
      storage: { out },
      sim: { width: 512, height: 384, z_planes: 6, channels: 2, fps: 30, blobs: 300 },
    });
    let browser: Browser | null = null;
    try {
      await waitFor(() => app.pipeline.status().acquisition !== null, 10000, 'acquisition');
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${app.port}/`);
      await page.waitForFunction(
        () => ((window as unknown as { spimstream?: { frames: number } }).spimstream?.frames ?? 0) >= 2,
        undefined,
        { timeout: 15000 },
      );
      const canvasHash = () =>
        page.evaluate(() => {
          const c = document.getElementById('view') as HTMLCanvasElement;
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let sum = 0;
          let h = 0;
          for (let i = 0; i < d.length; i += 4) {
            sum += d[i];
            h = (Math.imul(h, 31) + d[i]) | 0;
          }
          return { sum, h };
        });
      const a = await canvasHash();
      expect(a.sum).toBeGreaterThan(0); // not blank
      await waitFor(async () => (await canvasHash()).h !== a.h, 20000, 'the image to change');
      type Win = {
        spimstream: { stream: string; byStream: Record<string, Record<string, [number, number][]>> };
        spimstreamPlots?: Record<string, { u: { scales: Record<string, { min: number; max: number; time?: boolean }> } }>;
      };
      const seriesLen = () =>
        page.evaluate(() => {
          const st = (window as unknown as Win).spimstream;
          const s = st.byStream[st.stream] ?? {};
          return { sat: s.sat?.length ?? 0, int: s.int?.length ?? 0, focus: s.focus?.length ?? 0 };
        });
      const s1 = await seriesLen();
      await waitFor(
        async () => {
          const s2 = await seriesLen();
          return s2.sat > s1.sat && s2.int > s1.int && s2.focus > s1.focus;
        },
        30000,
        'every plot series to grow',
      );
      // uPlot plots: a time axis, and a saturation range that starts at 0 % and includes the threshold.
      await page.waitForFunction(
        () => Number(document.getElementById('p-sat')?.dataset.points) > 0 && document.querySelector('#p-sat .uplot') !== null,
        undefined,
        { timeout: 15000 },
      );
      const scales = await page.evaluate(() => {
        const p = (window as unknown as Win).spimstreamPlots!;
        return {
          satMin: p.sat.u.scales.y.min,
          satMax: p.sat.u.scales.y.max,
          time: p.sat.u.scales.x.time === true,
          focusMin: p.focus.u.scales.y.min,
          focusMax: p.focus.u.scales.y.max,
        };
      });
      expect(scales.time).toBe(true);
      expect(scales.satMin).toBe(0);
      expect(scales.satMax).toBeGreaterThanOrEqual(0.1);
      expect(scales.focusMax).toBeGreaterThan(scales.focusMin);
      // The header says whose fps it is, and the ring's total (two channels: about twice).
      await page.waitForFunction(() => Number(document.getElementById('st-fps-all')?.textContent) > 0, undefined, { timeout: 15000 });
      const fps = await page.evaluate(() => ({
        one: Number(document.getElementById('st-fps')!.textContent),
        all: Number(document.getElementById('st-fps-all')!.textContent),
        who: document.getElementById('st-fps-stream')!.textContent,
      }));
      expect(fps.who).toMatch(/^\S+\/\d+$/);
      expect(fps.all).toBeGreaterThan(fps.one);
      // The disk-full forecast beside the free space: a duration, or 'not filling' (never the placeholder).
      expect(await page.textContent('#st-disk-full')).toMatch(/^(not filling|\d+ (s|min)|\d+ h \d\d min)$/);
      expect(await page.isHidden('#st-offload-box'), 'no offload box when offload is off').toBe(true);

      // Inject saturation in the simulator: the same threshold that Grafana uses raises the banner.
      const r = await fetch(`http://127.0.0.1:${app.port}/api/sim`, {
        method: 'POST',
        body: JSON.stringify({ saturate: 1 }),
        headers: { 'content-type': 'application/json' },
      });
      expect(r.status).toBe(200);
      // Wait for the banner's text, not only its element (it is filled in when the alert state arrives).
      await page.waitForSelector('#alerts [data-alert="saturation"]', { timeout: 30000 });
      await page.waitForFunction(
        () => /saturation .*% of pixels saturated/.test(document.getElementById('alerts')?.textContent ?? ''),
        undefined,
        { timeout: 30000 },
      );
      expect(await page.textContent('#alerts')).toMatch(/saturation .*% of pixels saturated/);

      // Metadata form -> store attributes, and shown back after a reload.
      await page.fill('form#meta input[name=user]', 'ada');
      await page.fill('form#meta input[name=sample]', 'zebrafish embryo 48 hpf');
      await page.fill('form#meta textarea[name=notes]', 'lightsheet QC run');
      await page.click('form#meta button[type=submit]');
      await page.waitForFunction(() => document.getElementById('metastate')?.textContent === 'saved', undefined, { timeout: 5000 });
      const [dir] = storeDirs(out);
      const attrs = JSON.parse(fs.readFileSync(path.join(dir, 'zarr.json'), 'utf8')).attributes.spimstream;
      expect(attrs).toMatchObject({ user: 'ada', sample: 'zebrafish embryo 48 hpf', notes: 'lightsheet QC run' });
      const reloadedAt = Date.now();
      await page.reload();
      await page.waitForFunction(
        () => (document.querySelector('form#meta input[name=user]') as HTMLInputElement).value === 'ada',
        undefined,
        { timeout: 10000 },
      );
      // The plots come back filled: the server sent the last minutes of the series.
      await page.waitForFunction(
        (t) => {
          const st = (window as unknown as Win).spimstream;
          const sat = st.byStream[st.stream]?.sat ?? [];
          return sat.length > 0 && sat[0][0] < t - 2000;
        },
        reloadedAt,
        { timeout: 15000 },
      );
      await page.waitForFunction(
        () => ((window as unknown as { spimstream?: { frames: number } }).spimstream?.frames ?? 0) >= 1,
        undefined,
        { timeout: 15000 },
      );
      fs.mkdirSync(path.join(ROOT, 'test-output'), { recursive: true });
      await page.screenshot({ path: path.join(ROOT, 'test-output', 'page.png') });
      expect(errors).toEqual([]);
    } finally {
      await browser?.close();
      await app.stop();
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('with the pyramid on, the live view is level 1 and says so', async () => {
    const out = tmpDir('e2e-pyr');
    const { app } = await startTestApp({
      source: 'sim',
      storage: { out, levels: 1 },
      preview: { max_size: 256 },
      sim: { width: 512, height: 384, z_planes: 6, channels: 1, fps: 20, blobs: 200 },
    });
    let browser: Browser | null = null;
    try {
      await waitFor(() => app.pipeline.status().acquisition !== null, 10000, 'acquisition');
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      await page.goto(`http://127.0.0.1:${app.port}/`);
      await page.waitForFunction(
        () => ((window as unknown as { spimstream?: { frames: number } }).spimstream?.frames ?? 0) >= 2,
        undefined,
        { timeout: 15000 },
      );
      expect(await page.textContent('#imginfo')).toMatch(/256×192 \(pyramid level 1\)/);
    } finally {
      await browser?.close();
      await app.stop();
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
