/**
 * `spimstream calibrate` replays a recorded store through the sidecar's QC: on a good run it keeps
 * the thresholds; on a run that went out of focus it says focus_lost would have fired.
 */
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { Calibration } from '../src/qc/calibrate.js';
import { BIN, oneLine, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

async function record(name: string, faults: Record<string, number>): Promise<string> {
  const out = tmpDir(name);
  cleanup.push(out);
  const { app, rec } = await startTestApp({
    source: 'sim',
    storage: { out },
    sim: { width: 128, height: 128, z_planes: 8, channels: 1, timepoints: 10, fps: 200, faults },
  });
  try {
    await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 60000, 'the simulated acquisition finished');
  } finally {
    await app.stop();
  }
  const [dir] = storeDirs(out);
  return dir;
}

function run(store: string): Calibration {
  const r = spawnSync(process.execPath, [BIN, 'calibrate', '--store', store, '--json'], { encoding: 'utf8', timeout: 120000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Calibration;
}

describe('spimstream calibrate', () => {
  it('a good run keeps the thresholds; a run that went out of focus shows it; a missing store is one line', async () => {
    const good = run(await record('cal-good', {}));
    expect(good.shape).toEqual([10, 1, 8, 128, 128]);
    expect(good.streams[0].focusRelativeMin!).toBeGreaterThan(0.85);
    expect(good.suggested['qc.thresholds.focus_drop_ratio']).toBe(0.3);
    expect(good.streams[0].driftConfidenceP5!).toBeGreaterThan(8);
    const blurred = run(await record('cal-defocus', { defocus_from_t: 6, defocus_px_per_t: 3 }));
    expect(blurred.streams[0].focusRelativeMin!).toBeLessThan(0.7);
    expect(blurred.notes.join('\n')).toMatch(/focus_lost at 0\.70 would have fired/);
    const bad = spawnSync(process.execPath, [BIN, 'calibrate', '--store', '/nonexistent/x.ome.zarr'], { encoding: 'utf8', timeout: 60000 });
    expect(bad.status).toBe(2);
    expect(oneLine(bad.stderr)).toMatch(/calibrate: cannot read \/nonexistent\/x\.ome\.zarr/);
  }, 240000);

  it('leaves out a never-written last timepoint and saturated stacks, as the sidecar does', async () => {
    const store = await record('cal-sat', { saturate_from_t: 7 });
    // A run stopped right after its metadata grew to a new timepoint: t = 10 holds only fill value.
    const meta = `${store}/0/zarr.json`;
    const doc = JSON.parse(fs.readFileSync(meta, 'utf8')) as { shape: number[] };
    doc.shape[0] += 1;
    fs.writeFileSync(meta, JSON.stringify(doc));
    const cal = run(store);
    expect(cal.shape[0]).toBe(11);
    const s = cal.streams[0] as Calibration['streams'][number] & { empty: number; saturated: number };
    expect(s.empty).toBe(1);
    expect(s.saturated).toBe(3);
    expect(s.stacks).toBe(7);
    // The saturated stacks did not lower (or raise) the good run's relative focus.
    expect(s.focusRelativeMin!).toBeGreaterThan(0.85);
    expect(cal.notes.join('\n')).toMatch(/channel 0: 3 saturated stack\(s\) left out of focus and drift/);
  }, 120000);
});
