/**
 * The pyramid on REAL camera frames (the raw LLSM bead stack, 61 x 128 x 128, odd z): levels auto,
 * every level read back with zarrita and compared bit-exactly with numpy's chained mean (NaN-padded
 * 2 x 2 x 2 windows, np.round = half to even), computed in another process from the TIFF itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import * as zarr from 'zarrita';
import { FileSystemStore } from '@zarrita/storage';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { ROOT, shmPath, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

const PY = `
import sys, os, numpy as np, tifffile
out = sys.argv[1]
st = tifffile.imread(os.path.join(sys.argv[2], 'llsm-bead-psf-61x128x128.tif')).astype(np.uint16)
st.tofile(os.path.join(out, 'level0.u16'))
v = st.astype(np.float64)
for k in (1, 2):
    p = np.pad(v, [(0, s % 2) for s in v.shape], constant_values=np.nan)
    Z, H, W = p.shape
    v = np.round(np.nanmean(p.reshape(Z // 2, 2, H // 2, 2, W // 2, 2), axis=(1, 3, 5)))
    v.astype(np.uint16).tofile(os.path.join(out, 'level%d.u16' % k))
    print(' '.join(str(s) for s in v.shape))
`;

const u16 = (f: string) => {
  const b = fs.readFileSync(f);
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
};

describe('pyramid on real frames', () => {
  it('levels auto over the raw LLSM stack equal numpy, level by level', async () => {
    const work = tmpDir('pyr-real');
    cleanup.push(work);
    const r = spawnSync('python3', ['-c', PY, work, path.join(ROOT, 'test/fixtures/real')], { encoding: 'utf8', timeout: 120000 });
    expect(r.status, r.stderr).toBe(0);
    const shapes = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ').map(Number));
    expect(shapes).toEqual([
      [31, 64, 64],
      [16, 32, 32],
    ]);
    const stack = u16(path.join(work, 'level0.u16'));
    const [Z, H, W] = [61, 128, 128];
    const out = path.join(work, 'data');
    const ring = shmPath('pyr-real');
    cleanup.push(ring, `${ring}.seen`);
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      ring_wait_seconds: 10,
      storage: { out, name: 'real', chunk: [8, 32, 32], shard: [32, 0, 0], levels: 'auto', downsample: 'mean' },
    });
    try {
      const w = RingWriter.create(ring, {
        width: W,
        height: H,
        dtype: 'uint16',
        bitDepth: 16,
        slotCount: 16,
        zPlanes: Z,
        channels: 1,
        views: 1,
      });
      w.startAcquisition();
      for (let z = 0; z < Z; z++) {
        w.publish(new Uint8Array(stack.buffer, stack.byteOffset + z * W * H * 2, W * H * 2), {
          cameraCounter: z,
          timestampNs: Date.now() * 1e6,
          t: 0,
          c: 0,
          z,
          view: 0,
          flags: 0,
        });
        if (z % 8 === 7) await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= z - 3, 30000, `frame ${z - 3}`);
      }
      await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= Z, 30000, 'all frames');
      w.finishAcquisition();
      w.close();
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 30000, 'finalized');
    } finally {
      await app.stop();
    }
    expect(rec.lost.overrun + rec.lost.gap + rec.lost.torn).toBe(0);
    const [dir] = storeDirs(out);
    // auto: 128² with 32² chunks halves twice (64², 32²) and stops where a plane fits one chunk
    expect(
      fs
        .readdirSync(dir)
        .filter((d) => /^\d+$/.test(d))
        .sort(),
    ).toEqual(['0', '1', '2']);
    for (let k = 0; k <= 2; k++) {
      const arr = await zarr.open.v3(zarr.root(new FileSystemStore(dir)).resolve(String(k)), { kind: 'array' });
      const got = (await zarr.get(arr, null)).data as Uint16Array;
      const want = u16(path.join(work, `level${k}.u16`));
      expect(arr.shape, `level ${k} shape`).toEqual([1, 1, ...(k === 0 ? [Z, H, W] : shapes[k - 1])]);
      expect(
        got.findIndex((v, i) => v !== want[i]),
        `level ${k}: first voxel that differs from numpy`,
      ).toBe(-1);
    }
  });
});
