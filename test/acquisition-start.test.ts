/**
 * The start of an acquisition as docs/ring-protocol.md orders it — `acquisition_first_frame`, then
 * `acquisition_id`, then `state = 1` — with the producer preempted between the id and the state
 * store (a busy acquisition PC): for that while the ring reads "new id, state 2 (finished)". The
 * acquisition must not be ended there and then, or its first frames go unstored as
 * `no-acquisition` (seen once in CI under a CPU hog). A real finished acquisition without frames
 * still ends, after a grace second.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { H, STATE_ACQUIRING } from '../src/ingest/ring-layout.js';
import { openArray, readPlane, SMALL_RING, shmPath, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

/** One aligned store into the ring header, as a producer does (u64 or u32, little endian). */
function store(fd: number, pos: number, v: number, bytes: 4 | 8): void {
  const b = Buffer.alloc(bytes);
  if (bytes === 8) b.writeBigUInt64LE(BigInt(v));
  else b.writeUInt32LE(v);
  fs.writeSync(fd, b, 0, bytes, pos);
}

describe('acquisition start', () => {
  it('a producer paused between acquisition_id and state keeps every frame of the new acquisition stored', async () => {
    const out = tmpDir('acq-start');
    const ring = shmPath('acq-start');
    cleanup.push(out, ring, `${ring}.lock`);
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      storage: { out, codec: 'gzip', chunk: [2, 16, 16], shard: [0, 0, 0], name: 'acq{acq}' },
    });
    const unstored: Record<string, number> = {};
    app.bus.on('frames-unstored', (e) => {
      unstored[e.reason] = (unstored[e.reason] ?? 0) + e.count;
    });
    const publish = (w: RingWriter, v: number) => {
      for (let z = 0; z < 2; z++)
        w.publish(new Uint8Array(256).fill(v + z), {
          cameraCounter: w.framesWritten,
          timestampNs: Date.now() * 1e6,
          t: 0,
          c: 0,
          z,
          view: 0,
          flags: 0,
        });
    };
    try {
      const w = RingWriter.create(ring, SMALL_RING);
      w.startAcquisition();
      publish(w, 10);
      // Attached and reading (a ring found already finished is joined at its end, by design).
      await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= 2, 30_000, 'acquisition 1 read');
      w.finishAcquisition();
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 30_000, 'acquisition 1 finalized');
      // Acquisition 2, store by store, with a pause after the id: the ring reads "id 2, finished".
      const fd = fs.openSync(ring, 'r+');
      try {
        store(fd, H.acquisitionFirstFrame, w.framesWritten, 8);
        store(fd, H.acquisitionId, 2, 8);
        await new Promise((r) => setTimeout(r, 300)); // the ingest thread polls the ring many times meanwhile
        expect(rec.events['acquisition-finished']?.length ?? 0, 'acquisition 2 not ended while its state still read finished').toBe(1);
        store(fd, H.state, STATE_ACQUIRING, 4);
      } finally {
        fs.closeSync(fd);
      }
      publish(w, 20);
      w.finishAcquisition();
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 2, 30_000, 'acquisition 2 finalized');
      w.close();
    } finally {
      await app.stop();
    }
    expect(unstored, 'no frame unstored').toEqual({});
    expect(storeDirs(out).map((d) => path.basename(d))).toEqual(['acq1.ome.zarr', 'acq2.ome.zarr']);
    for (const [acq, v] of [
      [1, 10],
      [2, 20],
    ]) {
      const arr = await openArray(path.join(out, `acq${acq}.ome.zarr`));
      for (let z = 0; z < 2; z++) expect(Array.from(await readPlane(arr, 0, 0, z)), `acq${acq} z=${z}`).toEqual(new Array(256).fill(v + z));
    }
  });

  it('an acquisition started and finished without a frame still ends (after its grace second)', async () => {
    const out = tmpDir('acq-empty');
    const ring = shmPath('acq-empty');
    cleanup.push(out, ring, `${ring}.lock`);
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      storage: { out, codec: 'gzip', chunk: [2, 16, 16], shard: [0, 0, 0], name: 'acq{acq}' },
    });
    try {
      const w = RingWriter.create(ring, SMALL_RING);
      w.startAcquisition();
      await waitFor(() => (rec.events['acquisition-started']?.length ?? 0) >= 1, 30_000, 'the empty acquisition started');
      w.finishAcquisition();
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 30_000, 'the empty acquisition ended');
      w.close();
    } finally {
      await app.stop();
    }
    expect(rec.events['acquisition-finished']?.length).toBe(1);
  });
});
