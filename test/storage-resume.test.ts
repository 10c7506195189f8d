/**
 * Storage pauses on ENOSPC or EROFS and resumes by itself, in new shards, as soon as a write
 * succeeds again; the acquisition summary and the store agree frame for frame: every plane reads
 * back bit-exact, or is fill value and was counted unstored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { mountFs, openArray, readPlane, shmPath, startTestApp, storeDirs, tmpDir, unmountFs, waitFor } from './helpers.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

const W = 256;
const H = 256;
const Z = 4;
const plane = (i: number) => {
  const px = new Uint16Array(W * H);
  for (let k = 0; k < px.length; k++) px[k] = 100 + ((k * 7 + i * 13) % 3000);
  return px;
};

function mountTmpfs(kb: number): string {
  const dir = path.join(tmpDir('resume'), 'mnt');
  fs.mkdirSync(dir);
  mountFs(dir, { size: `${kb}k` });
  cleanup.push(() => {
    unmountFs(dir);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });
  return dir;
}

async function run(kind: 'ENOSPC' | 'EROFS'): Promise<void> {
  const mnt = mountTmpfs(8 * 1024);
  const out = path.join(mnt, 'data');
  const ring = shmPath(`resume-${kind}`);
  cleanup.push(() => fs.rmSync(ring, { force: true }));
  const w = RingWriter.create(ring, {
    width: W,
    height: H,
    dtype: 'uint16',
    bitDepth: 16,
    slotCount: 32,
    zPlanes: Z,
    channels: 1,
    views: 1,
  });
  w.startAcquisition();
  const { app, rec } = await startTestApp({
    source: `shm:${ring}`,
    storage: { out, min_free_bytes: 0, codec: 'none', chunk: [Z, W, H], shard: [Z, 0, 0] },
  });
  let i = 0;
  const publish = async (n: number) => {
    for (let k = 0; k < n; k++, i++) {
      w.publish(new Uint8Array(plane(i).buffer), {
        cameraCounter: i,
        timestampNs: Date.now() * 1e6,
        t: Math.floor(i / Z),
        c: 0,
        z: i % Z,
        view: 0,
        flags: 0,
      });
      const want = i + 1;
      await waitFor(() => app.pipeline.counters.framesReceived >= want, 10_000, `frame ${want}`);
    }
  };
  let ballast = '';
  try {
    await publish(2 * Z);
    await waitFor(() => (rec.events['chunk-stored']?.length ?? 0) >= 1, 10_000, 'a first stored block');
    // The fault: the disk fills up, or is remounted read-only.
    if (kind === 'ENOSPC') {
      ballast = path.join(mnt, 'ballast');
      const fd = fs.openSync(ballast, 'w');
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(64 * 1024));
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
      } finally {
        fs.closeSync(fd);
      }
    } else {
      // Refused (EBUSY) while a file is open for writing: tried again until the last write is done.
      await waitFor(() => spawnSync('mount', ['-o', 'remount,ro', mnt]).status === 0, 10_000, 'a read-only remount');
    }
    while ((rec.events['storage-error']?.length ?? 0) === 0 && i < 40 * Z) await publish(Z);
    expect(rec.events['storage-error']?.[0]?.code).toBe(kind);
    await publish(2 * Z); // while paused: counted, not stored
    // The fault passes: storing resumes by itself.
    if (kind === 'ENOSPC') fs.rmSync(ballast);
    else execFileSync('mount', ['-o', 'remount,rw', mnt]);
    await waitFor(() => (rec.events['storage-error']?.length ?? 0) > 0 && app.pipeline.status().storeWritable, 15_000, 'storage to resume');
    const resumedAt = i;
    await publish(3 * Z);
    w.finishAcquisition();
    await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 1, 15_000, 'the acquisition to finish');
    const summary = rec.events['acquisition-finished']![0].summary;
    const unstored = (rec.events['frames-unstored'] ?? []).reduce<Record<string, number>>((m, e) => {
      m[e.reason] = (m[e.reason] ?? 0) + e.count;
      return m;
    }, {});
    expect(Object.keys(unstored), JSON.stringify(rec.events['storage-error'])).toEqual([kind]);
    expect(summary.framesReceived).toBe(i);
    expect(summary.framesUnstored).toBe(unstored[kind]);
    expect(summary.framesUnstored).toBeGreaterThanOrEqual(2 * Z);
    await app.stop();
    // The store agrees: every plane is its frame, or fill value and counted.
    const arr = await openArray(storeDirs(out)[0]);
    let stored = 0;
    let fill = 0;
    for (let f = 0; f < i; f++) {
      const got = await readPlane(arr, Math.floor(f / Z), 0, f % Z);
      const want = plane(f);
      const same = Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer));
      const empty = got.every((v) => v === 0);
      expect(same || empty, `frame ${f}: neither its pixels nor fill value`).toBe(true);
      if (same) stored++;
      else fill++;
      if (f >= resumedAt) expect(same, `frame ${f} after resuming`).toBe(true);
    }
    expect(stored + fill).toBe(i);
    expect(fill).toBe(summary.framesUnstored);
    expect(rec.events.alert?.filter((a) => a.name === 'storage').map((a) => a.active)).toEqual([true, false]);
  } finally {
    await app.stop();
    w.close();
  }
}

describe('storage resumes after the disk comes back', () => {
  it('ENOSPC: pauses, counts, resumes in new shards once space is freed; summary and store agree', async () => run('ENOSPC'), 90_000);
  it('EROFS: pauses, counts, resumes once remounted read-write; summary and store agree', async () => run('EROFS'), 90_000);
});
