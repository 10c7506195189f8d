/**
 * Storage comes before QC: with QC far slower than the input (drift on every plane, every focus
 * measure), focus and drift are sampled, counted, and chunks keep reaching the disk during the run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checksumPixels } from '../workers/kernels/stats.js';
import * as zarr from 'zarrita';
import WebSocket from 'ws';
import { BIN, exited, openArray, readFrameLog, shmPath, spawnNode, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const files: string[] = [];
afterEach(() => {
  for (const f of files.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

describe('storage first under a QC overload', () => {
  it('QC is sampled (counted), shards are final while the acquisition runs, every stored frame is bit-exact', async () => {
    const ring = shmPath('qcload');
    const out = tmpDir('qcload');
    const log = path.join(out, 'frames.jsonl');
    files.push(ring, `${ring}.lock`, `${ring}.seen`, out);
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      storage: { out: path.join(out, 'data') },
      qc: { drift_planes: 'all', drift_upsample: 50, focus: ['dcts', 'tenengrad', 'laplacian_variance', 'brenner'] },
    });
    const sim = spawnNode([
      BIN,
      'sim',
      '--ring',
      ring,
      '--width',
      '256',
      '--height',
      '256',
      '--z-planes',
      '8',
      '--channels',
      '1',
      '--fps',
      '400',
      '--slots',
      '256',
      '--log-frames',
      log,
    ]);
    let metrics = '';
    // A viewer asking for 30 previews a second: while the workers are behind, previews yield first.
    const logs: string[] = [];
    app.bus.on('log', (l) => logs.push(l.msg));
    let previews = 0;
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`);
    ws.on('message', (_d: Buffer, bin: boolean) => {
      if (bin) previews++;
    });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', fps: 30, format: 'raw' })));
    ws.on('error', () => undefined);
    try {
      // While the producer is still publishing, chunks reach the disk: encodes are not starved behind QC.
      // The producer runs until stopped: chunks must reach the disk while QC is overloaded.
      await waitFor(() => (rec.events['chunk-stored']?.length ?? 0) >= 8, 60000, 'chunks stored while the producer runs');
      expect(sim.exitCode, sim.output()).toBeNull();
      expect(app.pipeline.counters.qcSampled, 'QC overloaded: focus and drift sampled').toBeGreaterThan(0);
      await waitFor(
        () => app.pipeline.counters.previewsThrottled > 0 && previews > 0,
        60000,
        'previews throttled, and still some arriving',
      );
      sim.kill('SIGTERM');
      expect(await exited(sim), sim.output()).toBe(0);
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 1, 60000, 'the acquisition finished');
      metrics = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
    } finally {
      ws.close();
      await app.stop();
    }
    expect(metrics).toMatch(/spimstream_previews_throttled_total\{[^}]*\} [1-9]/);
    expect(
      logs.some((m) => m.startsWith('previews throttled to 1 per second')),
      logs.join('\n'),
    ).toBe(true);
    const s = rec.events['acquisition-finished']![0].summary;
    expect(s.qcSampled, 'QC overloaded: focus and drift sampled').toBeGreaterThan(0);
    const qcEvents = rec.events['frame-qc'] ?? [];
    expect(qcEvents.filter((e) => e.qc.sampled).length).toBe(s.qcSampled);
    // Each sampled frame says why, in its event, the summary and /metrics; QC overloaded: the workers.
    for (const e of qcEvents) expect(e.sampledReason !== null, `frame ${e.meta.seq}`).toBe(e.qc.sampled);
    expect(Object.values(s.qcSampledReasons).reduce((a, n) => a + n, 0)).toBe(s.qcSampled);
    expect(s.qcSampledReasons['workers-behind'], JSON.stringify(s.qcSampledReasons)).toBeGreaterThan(0);
    for (const [reason, n] of Object.entries(s.qcSampledReasons))
      expect(qcEvents.filter((e) => e.sampledReason === reason).length, reason).toBe(n);
    const perReason = [...metrics.matchAll(/^spimstream_qc_sampled_total\{[^}]*reason="([a-z-]+)"[^}]*\} (\d+)$/gm)];
    expect(Object.fromEntries(perReason.map((m) => [m[1], Number(m[2])]))).toEqual(s.qcSampledReasons);
    // Every frame still has intensity and saturation; sampled ones have no focus or drift.
    for (const e of qcEvents.filter((x) => x.qc.sampled)) {
      expect(Object.keys(e.qc.focus)).toEqual([]);
      expect(e.qc.drift).toBeNull();
    }
    expect(metrics).toMatch(/spimstream_qc_sampled_total\{[^}]*\} [1-9]/);
    const [dir] = storeDirs(path.join(out, 'data'));
    const arr = await openArray(dir);
    let stored = 0;
    const [, , Z, Hh, Ww] = arr.shape;
    const stacks = new Map<number, Uint16Array>(); // one read per timepoint (c = 0): a whole shard at once
    for (const f of readFrameLog(log)) {
      if (f.t >= arr.shape[0]) continue;
      if (!stacks.has(f.t)) stacks.set(f.t, (await zarr.get(arr, [f.t, 0, null, null, null])).data as Uint16Array);
      const px = stacks.get(f.t)!.subarray(f.z * Hh * Ww, (f.z + 1) * Hh * Ww);
      expect(Z).toBe(8);
      if (px.every((v) => v === 0)) continue;
      expect(checksumPixels(px), `frame ${f.seq} stored bit-exact`).toBe(f.checksum);
      stored++;
    }
    expect(stored).toBe(s.framesReceived - s.framesUnstored);
    expect(s.framesReceived + s.framesOverrun + s.framesTorn).toBe(readFrameLog(log).length);
  });
});
