/**
 * QC baselines that cannot be poisoned, on the simulator through the real sidecar: a saturation
 * episode and an intensity step are kept out of the focus and drift baselines (no false focus_lost
 * during or after, no spurious drift), a deliberate change is accepted with POST /api/rebaseline,
 * and a real defocus that persists keeps focus_lost firing.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { excluded, SignalBaseline } from '../src/qc/qc-gate.js';
import type { PipelineEvents } from '../src/pipeline/events.js';
import { startTestApp, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { recursive: true, force: true });
});

describe('the QC gate', () => {
  it('keeps out saturated measurements and intensity steps beyond the factor, both ways', () => {
    const lim = { saturatedRatio: 0.001, intensityStep: 2 };
    expect(excluded(0.002, 100, 100, lim)).toBe('saturated');
    expect(excluded(0.0005, 100, 100, lim)).toBe(null);
    expect(excluded(0, 401, 100, lim)).toBe('intensity-step');
    expect(excluded(0, 49, 100, lim)).toBe('intensity-step');
    expect(excluded(0, 199, 100, lim)).toBe(null);
    expect(excluded(0, 51, 100, lim)).toBe(null);
    expect(excluded(0, 1000, null, lim)).toBe(null); // no baseline yet
    const b = new SignalBaseline(3);
    expect(b.get()).toBe(null);
    for (const v of [100, 90, 80, 70]) b.add(v);
    expect(b.get()).toBe(80); // the median of the last 3: slow bleaching moves it along
  });
});

describe('baselines on the simulator through the sidecar', () => {
  it('saturation episode and a ×4 step: never focus_lost, no drift; accepted with rebaseline; a persistent defocus fires and stays', async () => {
    const out = tmpDir('qc-baseline');
    cleanup.push(out);
    const { app, rec } = await startTestApp({
      source: 'sim',
      storage: { enabled: false },
      sim: { width: 512, height: 512, z_planes: 16, channels: 1, fps: 200 },
    });
    const stacks = () => rec.events['stack-qc'] ?? [];
    const post = async (route: string, body: unknown) => {
      const r = await fetch(`http://127.0.0.1:${app.port}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(r.status, `${route} ${JSON.stringify(body)}`).toBe(200);
    };
    /** Waits for `n` more stacks; returns the index of the first of them. */
    const more = async (n: number, what: string) => {
      const from = stacks().length;
      await waitFor(() => stacks().length >= from + n, 60_000, `${n} stacks ${what}`);
      return from;
    };
    const focusAlerts = () => (rec.events.alert ?? []).filter((a) => a.name === 'focus_lost' && !a.update);
    try {
      await more(8, 'in focus');
      // A saturation episode.
      await post('/api/sim', { saturate: 1 });
      const satFrom = await more(24, 'saturated');
      await post('/api/sim', { saturate: 0 });
      const afterSat = await more(20, 'after the episode');
      // The pipeline lags the simulator by a few stacks: each phase starts at its first stack that shows it.
      const episode = stacks().slice(satFrom, afterSat);
      const i0 = episode.findIndex((s) => s.qc.excluded === 'saturated');
      expect(i0, JSON.stringify(episode.map((s) => s.qc.excluded))).toBeGreaterThanOrEqual(0);
      expect(i0).toBeLessThanOrEqual(8);
      expect(
        episode.slice(i0).every((s) => s.qc.excluded === 'saturated' && s.qc.focusRelative === null),
        JSON.stringify(episode.map((s) => s.qc.excluded)),
      ).toBe(true);
      expect(episode.length - i0).toBeGreaterThanOrEqual(16);
      const after = stacks().slice(afterSat);
      const j0 = after.findIndex((s) => s.qc.excluded === null);
      expect(j0).toBeGreaterThanOrEqual(0);
      expect(j0).toBeLessThanOrEqual(8);
      const back = after.slice(j0);
      expect(back.length).toBeGreaterThanOrEqual(8);
      for (const s of back) {
        expect(s.qc.excluded).toBe(null);
        expect(s.qc.focusRelative!).toBeGreaterThan(0.8);
        expect(s.qc.focusRelative!).toBeLessThan(1.25);
      }
      // Drift: never valid on a saturated plane, never beyond sub-pixel noise anywhere (the sample does not move).
      const drifts = (rec.events['frame-qc'] ?? []).filter((e) => e.qc.drift).map((e) => e.qc.drift!);
      expect(drifts.filter((d) => d.excluded === 'saturated').length).toBeGreaterThanOrEqual(21);
      expect(drifts.every((d) => !(d.valid && d.excluded))).toBe(true);
      const shifts = drifts.filter((d) => d.valid).map((d) => Math.hypot(d.dx, d.dy));
      expect(shifts.length).toBeGreaterThan(10);
      expect(Math.max(...shifts)).toBeLessThan(0.5);

      // A ×4 intensity step (laser power up): not judged until accepted.
      await post('/api/sim', { gain: 4 });
      const stepFrom = await more(14, 'at ×4');
      const stepAll = stacks().slice(stepFrom);
      const k0 = stepAll.findIndex((s) => s.qc.excluded === 'intensity-step');
      expect(k0, JSON.stringify(stepAll.map((s) => s.qc.excluded))).toBeGreaterThanOrEqual(0);
      expect(k0).toBeLessThanOrEqual(8);
      expect(
        stepAll.slice(k0).every((s) => s.qc.excluded === 'intensity-step'),
        JSON.stringify(stepAll.map((s) => s.qc.excluded)),
      ).toBe(true);
      expect(
        (rec.events.log ?? []).some((l) =>
          /GFP\/0: stacks from t=\d+ are not judged for focus and drift \(mean signal ×[34]\.\d+ of its baseline\)/.test(l.msg),
        ),
      ).toBe(true);
      await post('/api/rebaseline', {});
      const acceptedFrom = await more(12, 'after the rebaseline');
      const accepted = stacks().slice(acceptedFrom + 2);
      expect(accepted.every((s) => s.qc.excluded === null)).toBe(true);
      const judged = accepted.filter((s) => s.qc.focusRelative !== null);
      expect(judged.length).toBeGreaterThanOrEqual(5);
      for (const s of judged) expect(Math.abs(s.qc.focusRelative! - 1)).toBeLessThan(0.2);
      expect(focusAlerts(), 'no focus_lost from saturation or an intensity step').toEqual([]);
      expect((rec.events.alert ?? []).filter((a) => a.name === 'drift' && a.active)).toEqual([]);

      // A real defocus that persists: fires, and stays firing for 60 stacks.
      await post('/api/sim', { gain: 4, defocus_px: 4 });
      await waitFor(() => focusAlerts().length > 0, 30_000, 'focus_lost to fire');
      const firedAt = stacks().length;
      await waitFor(() => stacks().length >= firedAt + 60, 60_000, '60 defocused stacks');
      const fired: PipelineEvents['alert'][] = focusAlerts();
      expect(fired.map((a) => a.active)).toEqual([true]);
      expect(
        stacks()
          .slice(firedAt)
          .every((s) => s.qc.excluded === null && s.qc.focusRelative !== null && s.qc.focusRelative < 0.7),
      ).toBe(true);
    } finally {
      await app.stop();
    }
  }, 180_000);
});
