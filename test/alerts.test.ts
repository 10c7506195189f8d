/**
 * Alerts as a facility engineer reads them: every alert has a spimstream_alert_active series from
 * the start (per stream where it has one), and a firing alert shows its current value.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RingWriter } from '../src/ingest/ring-writer.js';
import type { AcquisitionSummary, PipelineEvents } from '../src/pipeline/events.js';
import { GLOBAL_ALERTS, STREAM_ALERTS } from '../src/qc/alerts.js';
import { EventBus } from '../src/pipeline/events.js';
import { attachLogger } from '../src/log.js';
import { shmPath, sleep, startTestApp, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true });
});

describe('alerts', () => {
  it('every alert is exported, 0 or 1, with its stream labels, from the start; a firing alert updates its value', async () => {
    const ring = shmPath('alerts');
    cleanup.push(ring, `${ring}.lock`);
    const W = 64;
    const H = 64;
    const wr = RingWriter.create(ring, {
      width: W,
      height: H,
      dtype: 'uint16',
      bitDepth: 16,
      slotCount: 64,
      zPlanes: 1,
      channels: 1,
      views: 1,
    });
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { enabled: false } });
    const metrics = async () => (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
    const alertValue = (text: string, labels: string) => {
      const m = new RegExp(`^spimstream_alert_active\\{${labels}\\} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    try {
      const before = await metrics();
      for (const a of GLOBAL_ALERTS) expect(alertValue(before, `camera="cam0",channel="",view="",alert="${a}"`), a).toBe(0);
      await waitFor(() => app.pipeline.status().attached, 20000, 'attach');
      wr.startAcquisition();
      // Frame t has 8·(t+1) saturated pixels of 4096: 0.2 %, 0.4 %, ... all above the 0.1 % threshold.
      let t = 0;
      const publish = () => {
        const px = new Uint16Array(W * H).fill(500);
        px.fill(65535, 0, 8 * (t + 1));
        wr.publish(new Uint8Array(px.buffer), { cameraCounter: t, timestampNs: Date.now() * 1e6, t, c: 0, z: 0, view: 0, flags: 3 });
        t++;
      };
      publish();
      await waitFor(
        () => (rec.events.alert ?? []).some((e) => e.name === 'saturation' && e.active && !e.update),
        20000,
        'saturation firing',
      );
      const stream = rec.events['frame-qc']![0].stream;
      const labels = `camera="${stream.camera}",channel="${stream.channel}",view="${stream.view}"`;
      const firing = await metrics();
      expect(alertValue(firing, `${labels},alert="saturation"`)).toBe(1);
      for (const a of STREAM_ALERTS.filter((x) => x !== 'saturation')) expect(alertValue(firing, `${labels},alert="${a}"`), a).toBe(0);
      const first = (rec.events.alert ?? []).find((e) => e.name === 'saturation')!;
      // Saturation keeps rising: the firing alert's value and message follow (at most once a second).
      const updated = (): PipelineEvents['alert'] | undefined =>
        (rec.events.alert ?? []).find((e) => e.name === 'saturation' && e.update && e.value > first.value);
      await waitFor(
        () => {
          if (t < 60) publish();
          return updated() !== undefined;
        },
        20000,
        'an update of the firing saturation alert',
      );
      const u = updated()!;
      expect(u.active).toBe(true);
      expect(u.message).not.toBe(first.message);
      expect(u.message).toMatch(/% of pixels saturated/);
      // The page's snapshot shows the current value too.
      expect(app.alerts.active.get(`saturation/${stream.channel}/${stream.view}`)!.value).toBeGreaterThan(first.value);
      // Updates are not transitions: one FIRING, no resolved.
      expect((rec.events.alert ?? []).filter((e) => e.name === 'saturation' && !e.update)).toHaveLength(1);
    } finally {
      await app.stop();
      wr.close();
    }
  });

  it('the log: a storage error is said once, then summarized (not every second); streams read GFP/0; the summary names the store', async () => {
    const bus = new EventBus();
    const lines: string[] = [];
    const out = {
      write: (l: string) => {
        lines.push(l);
        return true;
      },
    } as unknown as NodeJS.WritableStream;
    attachLogger(bus, false, 'info', out);
    bus.emit('acquisition-started', {
      id: 3,
      name: 'acq3',
      storePath: '/data/acq3.ome.zarr',
      viewStores: ['/data/acq3.ome.zarr'],
      geometry: {},
    });
    bus.emit('alert', { name: 'saturation', stream: { camera: 'cam0', channel: 'GFP', view: '0' }, active: true, message: 'x', value: 1 });
    bus.emit('alert', { name: 'frames_dropped', stream: null, active: true, message: '1 frame lost in the last 60 s', value: 1 });
    let total = 0;
    // 3 s of a stopped store: 30 batches of 4 frames, over several of the logger's 1 s ticks.
    for (let i = 0; i < 30; i++) {
      bus.emit('frames-unstored', { count: 4, reason: 'EEXIST' } as never);
      total += 4;
      await sleep(100);
    }
    const summary: AcquisitionSummary = {
      framesReceived: 0,
      framesOverrun: 0,
      framesGap: 0,
      framesTorn: 0,
      qcSampled: 0,
      qcSampledReasons: {},
      framesUnstored: total,
      bytesReceived: 0,
      bytesWritten: 0,
      compressionRatio: 1,
      durationSeconds: 3,
    };
    bus.emit('acquisition-finished', { id: 3, name: 'acq3', storePath: '/data/acq3.ome.zarr', summary });
    const unstored = lines.filter((l) => /frames (still )?not stored/.test(l));
    expect(unstored.length, unstored.join('')).toBe(2); // the first second, and the rest at the end
    expect(unstored.reduce((a, l) => a + Number(/frames=(\d+)/.exec(l)![1]), 0)).toBe(total);
    expect(lines.find((l) => /alert saturation FIRING/.test(l))).toMatch(/ stream=GFP\/0\n$/);
    expect(lines.find((l) => /alert frames_dropped FIRING/.test(l))).not.toMatch(/stream=/);
    expect(lines.find((l) => /acquisition finished/.test(l))).toMatch(/store=\/data\/acq3\.ome\.zarr/);
  });
});
