/**
 * The ingest thread's promise: nothing on the main thread — here a 1.5 s busy loop, ten times the
 * ring's depth — delays a ring read. Frames wait in the frame pool instead of being overrun, and
 * every one is stored bit-exact once the main thread is back. And when the pool itself is full,
 * the ring never overflows: the oldest frames are skipped on purpose, counted `frame-pool-full`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checksumPixels } from '../workers/kernels/stats.js';
import { IngestClient } from '../src/ingest/ingest-client.js';
import { nextFrameGapMs, pollSleepMs } from '../src/ingest/ring-ingest.js';
import { RingReader } from '../src/ingest/ring-reader.js';
import { RingWriter } from '../src/ingest/ring-writer.js';
import {
  BIN,
  exited,
  openArray,
  readFrameLog,
  readPlane,
  SMALL_RING,
  shmPath,
  spawnNode,
  startTestApp,
  storeDirs,
  tmpDir,
  waitFor,
} from './helpers.js';

const cleanup: string[] = [];
const procs: ReturnType<typeof spawnNode>[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

/** A 16 x 16 uint8 ring of 8 slots; publish(z) writes a frame filled with z + 1. */
function smallRing(name: string) {
  const ring = shmPath(name);
  cleanup.push(ring);
  const w = RingWriter.create(ring, SMALL_RING);
  const publish = (z: number) =>
    w.publish(new Uint8Array(256).fill(z + 1), { cameraCounter: z, timestampNs: z, t: 0, c: 0, z, view: 0, flags: 0 });
  return { ring, w, publish };
}

describe('ingest in a thread of its own', () => {
  it('reads the ring through the descriptor the attach opened: a ring removed right after its last frame is read whole', async () => {
    const { ring, w, publish } = smallRing('ingest-removed');
    w.startAcquisition();
    for (let z = 0; z < 6; z++) publish(z);
    w.finishAcquisition();
    const reader = RingReader.open(ring);
    // A producer with a short run removes its ring before the ingest thread has started.
    w.close();
    fs.rmSync(ring);
    const got: { seq: number; byte: number }[] = [];
    const said: string[] = [];
    const client: IngestClient = new IngestClient(
      ring,
      reader.header,
      { next: 0, lateBefore: -1, finishedId: null },
      4,
      (batch) => {
        for (const m of batch) {
          if (m.k === 'frame') {
            got.push({ seq: m.meta.seq, byte: new Uint8Array(client.pool.frames, m.slot * client.pool.frameBytes, 1)[0] });
            client.pool.release(m.slot);
          } else if (m.k === 'acq-end') said.push('acq-end');
          else if (m.k === 'error') said.push(m.message);
        }
      },
      reader.fd,
    );
    try {
      await waitFor(() => said.length > 0, 30_000, 'the acquisition ended (or an error)');
      expect(said).toEqual(['acq-end']);
      expect(got).toEqual([0, 1, 2, 3, 4, 5].map((z) => ({ seq: z, byte: z + 1 })));
    } finally {
      await client.abort();
    }
  });

  it('the poll interval: a quarter of the time between frames, 1 to 5 ms; 5 ms after a second without a frame', () => {
    expect(pollSleepMs(0, 0.5)).toBe(1);
    expect(pollSleepMs(10, 2)).toBe(1);
    expect(pollSleepMs(10, 10)).toBe(2.5);
    expect(pollSleepMs(10, 16.7)).toBeCloseTo(4.175, 10);
    expect(pollSleepMs(500, 100)).toBe(5);
    expect(pollSleepMs(1001, 1)).toBe(5);
    // Smoothing: a long pause counts as 20 ms, and four frames 1 ms apart bring the interval back down.
    let gap = nextFrameGapMs(1, 60_000);
    expect(gap).toBeCloseTo(1 + 19 / 4, 10);
    for (let i = 0; i < 8; i++) gap = nextFrameGapMs(gap, 1);
    expect(pollSleepMs(1, gap)).toBe(1);
  });

  it('polls about every 5 ms when frames come 20 ms apart and when none come, and reads the next frame', async () => {
    const { ring, w, publish } = smallRing('ingest-idle');
    const header = RingReader.open(ring);
    const seqs: number[] = [];
    const client: IngestClient = new IngestClient(
      ring,
      header.header,
      { next: 0, lateBefore: -1, finishedId: null },
      4,
      (batch) => {
        for (const m of batch)
          if (m.k === 'frame') {
            seqs.push(m.meta.seq);
            client.pool.release(m.slot);
          }
      },
      header.fd,
    );
    try {
      w.startAcquisition();
      publish(0);
      await waitFor(() => seqs.length === 1, 30_000, 'the first frame read');
      // Frames every 20 ms for half a second: the thread polls every 5 ms between them, not every 1.
      const flowing0 = client.polls;
      const t0 = performance.now();
      for (let z = 1; z <= 25; z++) {
        publish(z);
        await new Promise((r) => setTimeout(r, 20));
      }
      const flowingRate = (client.polls - flowing0) / ((performance.now() - t0) / 1000);
      await waitFor(() => seqs.length === 26, 30_000, 'the flowing frames read');
      // A second and a half without a frame, then a whole second of idle polls counted.
      await new Promise((r) => setTimeout(r, 1500));
      const idle0 = client.polls;
      const t1 = performance.now();
      await new Promise((r) => setTimeout(r, 1000));
      const idleRate = (client.polls - idle0) / ((performance.now() - t1) / 1000);
      expect(flowingRate, 'polls per second while frames come 20 ms apart').toBeLessThan(400);
      expect(flowingRate, 'polls per second while frames come 20 ms apart').toBeGreaterThan(20);
      expect(idleRate, 'polls per second when idle').toBeLessThan(250);
      expect(idleRate, 'polls per second when idle').toBeGreaterThan(20);
      publish(26);
      await waitFor(() => seqs.length === 27, 30_000, 'the frame after the pause read');
      expect(seqs).toEqual([...Array(27).keys()]);
    } finally {
      await client.abort();
      w.close();
    }
  });

  it('a main thread blocked for 10× the ring depth loses no frame: they wait in the pool and are all stored bit-exact', async () => {
    const ring = shmPath('ingest-stall');
    const out = tmpDir('ingest-stall');
    const log = path.join(out, 'frames.jsonl');
    cleanup.push(ring, `${ring}.lock`, out);
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { out: path.join(out, 'data') } });
    let received = 0;
    app.bus.on('frame-received', () => {
      received++;
    });
    const N = 300;
    // 100 fps into 16 slots: the ring holds 0.16 s of frames.
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
      '10',
      '--channels',
      '1',
      '--fps',
      '100',
      '--frames',
      String(N),
      '--slots',
      '16',
      '--log-frames',
      log,
    ]);
    procs.push(sim);
    try {
      await waitFor(() => received >= 20, 30000, 'the first frames received');
      const lostBefore = rec.lost.overrun + rec.lost.torn;
      const stallUntil = Date.now() + 1500;
      while (Date.now() < stallUntil) {
        /* the main thread is busy: no event loop, no timers */
      }
      expect(await exited(sim), sim.output()).toBe(0);
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 30000, 'the acquisition finished');
      const lostLate = (rec.events['frames-lost'] ?? []).filter((e) => e.late).reduce((a, e) => a + e.count, 0);
      expect(rec.lost.overrun + rec.lost.torn - lostBefore, 'frames lost during or after the stall').toBe(0);
      expect(lostBefore, 'only frames overwritten before attaching may be lost').toBe(lostLate);
      const s = rec.events['acquisition-finished']![0].summary;
      expect(s.framesReceived + s.framesOverrun + s.framesTorn).toBe(N);
      expect(s.framesUnstored).toBe(0);
      const [dir] = storeDirs(path.join(out, 'data'));
      const arr = await openArray(dir);
      let stored = 0;
      for (const f of readFrameLog(log)) {
        const px = await readPlane(arr, f.t, f.c, f.z);
        if (f.seq < lostLate) continue; // overwritten before the sidecar attached
        expect(checksumPixels(px), `frame ${f.seq}`).toBe(f.checksum);
        stored++;
      }
      expect(stored).toBe(s.framesReceived);
    } finally {
      await app.stop();
    }
  });

  it('a frame pool too small for the stall: frames are shed as frame-pool-full, the ring never overruns', async () => {
    const ring = shmPath('ingest-shed');
    const out = tmpDir('ingest-shed');
    const log = path.join(out, 'frames.jsonl');
    cleanup.push(ring, `${ring}.lock`, out);
    // 1 MiB of 128 KiB frames: an 8-frame pool, for a 16-slot ring.
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      pipeline: { workers: 2, frame_pool_mib: 1 },
      storage: { out: path.join(out, 'data') },
    });
    let received = 0;
    app.bus.on('frame-received', () => {
      received++;
    });
    const N = 300;
    const sim = spawnNode(
      [BIN, 'sim', '--ring', ring, '--width', '256', '--height', '256', '--z-planes', '10', '--channels', '1'].concat([
        '--fps',
        '100',
        '--frames',
        String(N),
        '--slots',
        '16',
        '--log-frames',
        log,
      ]),
    );
    procs.push(sim);
    try {
      await waitFor(() => received >= 20, 30000, 'the first frames received');
      const lostBefore = rec.lost.overrun + rec.lost.torn;
      const stallUntil = Date.now() + 1500;
      while (Date.now() < stallUntil) {
        /* the main thread is busy: the pool fills, nothing returns a buffer */
      }
      expect(await exited(sim), sim.output()).toBe(0);
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 30000, 'the acquisition finished');
      expect(rec.lost.overrun + rec.lost.torn - lostBefore, 'frames lost during or after the stall').toBe(0);
      const shed = (rec.events['frames-unstored'] ?? []).filter((e) => e.reason === 'frame-pool-full').reduce((a, e) => a + e.count, 0);
      // ~150 frames published during the stall, 8 in the pool and 4-8 in the ring: most were shed.
      expect(shed).toBeGreaterThan(100);
      const s = rec.events['acquisition-finished']![0].summary;
      expect(s.framesReceived + s.framesOverrun + s.framesTorn).toBe(N);
      expect(s.framesUnstored).toBeGreaterThanOrEqual(shed);
      // Every plane is its frame bit-exact, or fill (a shed or unstored frame); as many frames as stored.
      const [dir] = storeDirs(path.join(out, 'data'));
      const arr = await openArray(dir);
      let stored = 0;
      const lostLate = (rec.events['frames-lost'] ?? []).filter((e) => e.late).reduce((a, e) => a + e.count, 0);
      for (const f of readFrameLog(log)) {
        if (f.seq < lostLate) continue;
        const px = await readPlane(arr, f.t, f.c, f.z);
        if (px.every((v) => v === 0)) continue;
        expect(checksumPixels(px), `frame ${f.seq}`).toBe(f.checksum);
        stored++;
      }
      expect(stored).toBe(s.framesReceived - s.framesUnstored);
    } finally {
      await app.stop();
    }
  });
});
