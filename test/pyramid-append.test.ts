/**
 * --append with the pyramid: the second acquisition's timepoints continue every level's time axis
 * (each level still the reference downsampling of level 0); appending with another level count is
 * refused in one line and the store is left as it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as zarr from 'zarrita';
import { FileSystemStore } from '@zarrita/storage';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import { shmPath, startTestApp, tmpDir, waitFor } from './helpers.js';
import { downsample, type Vol } from './pyramid-reference.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

const W = 30;
const H = 22;
const Z = 3;

function frame(round: number, t: number, z: number): Uint16Array {
  const rnd = mulberry32(100 * round + 10 * t + z + 1);
  return Uint16Array.from({ length: W * H }, () => Math.floor(rnd() * 4000));
}

async function acquire(out: string, round: number, levels: number, append: boolean): Promise<string[]> {
  const ring = shmPath(`pyr-append${round}`);
  cleanup.push(ring, `${ring}.seen`);
  const { app, rec } = await startTestApp(
    { source: `shm:${ring}`, ring_wait_seconds: 10, storage: { out, name: 'same', chunk: [2, 16, 16], shard: [0, 0, 0], levels } },
    { append },
  );
  try {
    const w = RingWriter.create(ring, {
      width: W,
      height: H,
      dtype: 'uint16',
      bitDepth: 16,
      slotCount: 8,
      zPlanes: Z,
      channels: 1,
      views: 1,
    });
    w.startAcquisition();
    let n = 0;
    for (let t = 0; t < 2; t++)
      for (let z = 0; z < Z; z++) {
        w.publish(new Uint8Array(frame(round, t, z).buffer), {
          cameraCounter: n++,
          timestampNs: Date.now() * 1e6,
          t,
          c: 0,
          z,
          view: 0,
          flags: 0,
        });
        await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= n, 20000, `frame ${n}`);
      }
    w.finishAcquisition();
    w.close();
    await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 20000, 'finalized');
  } finally {
    await app.stop();
  }
  return (rec.events['storage-error'] ?? []).map((e) => e.message);
}

async function read(dir: string, k: number): Promise<Vol> {
  const arr = await zarr.open.v3(zarr.root(new FileSystemStore(dir)).resolve(String(k)), { kind: 'array' });
  const r = await zarr.get(arr, null);
  return { shape: arr.shape, data: Float64Array.from(r.data as Uint16Array) };
}

describe('--append with the pyramid', () => {
  it('continues every level in t, bit-exact; another level count is refused in one line', async () => {
    const out = tmpDir('pyr-append');
    cleanup.push(out);
    expect(await acquire(out, 0, 1, false)).toEqual([]);
    expect(await acquire(out, 1, 1, true)).toEqual([]);
    const dir = path.join(out, 'same.ome.zarr');
    const l0 = await read(dir, 0);
    expect(l0.shape).toEqual([4, 1, Z, H, W]);
    for (let t = 0; t < 4; t++)
      for (let z = 0; z < Z; z++) {
        const want = frame(t < 2 ? 0 : 1, t % 2, z);
        const at = (t * Z + z) * W * H;
        expect(
          l0.data.subarray(at, at + W * H).every((v, i) => v === want[i]),
          `level 0 t=${t} z=${z}`,
        ).toBe(true);
      }
    const l1 = await read(dir, 1);
    const want1 = downsample(l0, 'mean');
    expect(l1.shape).toEqual(want1.shape);
    expect(
      l1.data.findIndex((v, i) => v !== want1.data[i]),
      'level 1: first differing voxel',
    ).toBe(-1);
    const before = fs.readFileSync(path.join(dir, '0', 'zarr.json'), 'utf8');
    const errors = await acquire(out, 2, 0, true);
    expect(errors.join('\n')).toMatch(
      /cannot append to .*same\.ome\.zarr: it has 2 resolution level\(s\), the acquisition writes 1 \(set storage\.levels to 1\)/,
    );
    expect(fs.readFileSync(path.join(dir, '0', 'zarr.json'), 'utf8')).toBe(before);
  });
});
