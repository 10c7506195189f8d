/**
 * The completion manifest: written last in the store's root, every file listed with a size and a
 * SHA-256 that sha256sum (coreutils, an independent implementation) agrees with, counts equal to the
 * summary, one QC entry per stack, valid against docs/manifest.schema.json (python jsonschema).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { ROOT, openArray, readPlane, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

function allFiles(dir: string, root = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const full = path.join(dir, d.name);
    return d.isDirectory() ? allFiles(full, root) : [path.relative(root, full)];
  });
}

describe('completion manifest', () => {
  it('spimstream-manifest.json lists every file with its true size and SHA-256, the losses, a QC entry per stack, validates against its schema; qc-report.html renders offline', async () => {
    const out = tmpDir('manifest');
    cleanup.push(out);
    const { app, rec } = await startTestApp({
      source: 'sim',
      storage: { out },
      sim: { width: 128, height: 96, z_planes: 4, channels: 2, timepoints: 6, fps: 60 },
    });
    try {
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 60000, 'the acquisition finished');
    } finally {
      await app.stop();
    }
    const [dir] = storeDirs(out);
    const file = path.join(dir, 'spimstream-manifest.json');
    await waitFor(() => fs.existsSync(file), 20000, 'the manifest');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    const s = rec.events['acquisition-finished']![0].summary;
    expect(m.complete).toBe(true);
    expect(m.frames.received).toBe(s.framesReceived);
    expect(m.frames.lost.overrun + m.frames.lost.gap + m.frames.lost.torn).toBe(s.framesOverrun + s.framesGap + s.framesTorn);
    expect(Object.values(m.frames.unstored as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(s.framesUnstored);
    expect(m.stacks).toHaveLength(6 * 2);
    for (const st of m.stacks) expect(st.planes, JSON.stringify(st)).toBe(4); // whole stacks, whatever order the workers finished in
    // Every file of the store except the manifest, and nothing else; sizes and hashes as sha256sum says.
    const onDisk = allFiles(dir)
      .filter((f) => f !== 'spimstream-manifest.json')
      .sort();
    expect(m.files.map((f: { path: string }) => f.path)).toEqual(onDisk);
    const sums = spawnSync('sha256sum', onDisk, { cwd: dir, encoding: 'utf8' });
    expect(sums.status, sums.stderr).toBe(0);
    const want = new Map(
      sums.stdout
        .trim()
        .split('\n')
        .map((l) => {
          const [h, f] = l.split(/\s+\*?/);
          return [f, h] as const;
        }),
    );
    for (const f of m.files as { path: string; bytes: number; sha256: string }[]) {
      expect(f.sha256, f.path).toBe(want.get(f.path));
      expect(f.bytes, f.path).toBe(fs.statSync(path.join(dir, f.path)).size);
    }
    expect(m.files.some((f: { path: string }) => f.path === 'zarr.json')).toBe(true);
    const v = spawnSync(
      'python3',
      [
        '-c',
        'import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))',
        file,
        path.join(ROOT, 'docs', 'manifest.schema.json'),
      ],
      { encoding: 'utf8' },
    );
    expect(v.status, v.stderr).toBe(0);
    // qc-report.html: listed, self-contained (every network request refused), one section per stream.
    expect(m.files.some((f: { path: string }) => f.path === 'qc-report.html')).toBe(true);
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.route('**/*', (route) => {
        const u = route.request().url();
        if (u.startsWith('file://')) return route.continue();
        requests.push(u);
        return route.abort();
      });
      await page.goto(`file://${path.join(dir, 'qc-report.html')}`);
      const got = await page.evaluate(() => ({
        streams: [...document.querySelectorAll('section.stream h2')].map((h) => h.textContent),
        figures: document.querySelectorAll('section.stream figure').length,
        drawn: [...document.querySelectorAll('section.stream svg path')].filter((p) => (p.getAttribute('d') ?? '').includes('L')).length,
        received: [...document.querySelectorAll('#summary tr')]
          .find((r) => r.querySelector('th')?.textContent === 'frames received')
          ?.querySelector('td')?.textContent,
        summary: Object.fromEntries(
          [...document.querySelectorAll('#summary tr')].map((r) => [
            r.querySelector('th')?.textContent,
            r.querySelector('td')?.textContent,
          ]),
        ),
        alerts: document.getElementById('alerts')?.textContent,
        axis: [...document.querySelectorAll('section.stream svg text')].map((t) => t.textContent),
      }));
      expect(got.streams).toEqual(['GFP · view 0', 'mCherry · view 0']);
      // Human units: times with a date and UTC, bytes in kB/MB/GB, the x axis in timepoints.
      expect(got.summary.started).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      expect(got.summary['written to disk']).toMatch(/^\d+(\.\d+)? (kB|MB|GB)$/);
      expect(got.alerts).toBe('no alert fired');
      expect(got.axis).toContain('5 s (timepoint 5)'); // the simulator's time step is 1 s
      expect(got.figures).toBe(2 * 5); // focus, relative focus, saturation, drift, intensity (or "no data" where QC was sampled)
      expect(got.drawn).toBeGreaterThanOrEqual(2 * 2); // saturation and intensity are measured on every frame
      expect(Number(got.received)).toBe(s.framesReceived);
      fs.mkdirSync(path.join(ROOT, 'test-output'), { recursive: true });
      await page.screenshot({ path: path.join(ROOT, 'test-output', 'qc-report.png'), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
    // The store it describes reads back (a plane of the last timepoint is there).
    const arr = await openArray(dir);
    expect(arr.shape[0]).toBe(6);
    expect((await readPlane(arr, 5, 1, 3)).some((x) => x !== 0)).toBe(true);
  });
});
