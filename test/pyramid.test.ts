/**
 * The live pyramid: every level read back with zarrita and compared bit-exactly with a reference
 * downsampling of level 0 computed here, voxel by voxel (and, for one case, by numpy in another
 * process); odd sizes, uint8 and uint16, lost frames and a partial last stack; OME multiscales.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import * as zarr from 'zarrita';
import { FileSystemStore } from '@zarrita/storage';
import { RingWriter } from '../src/ingest/ring-writer.js';
import type { Dtype } from '../src/ingest/ring-layout.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import { shmPath, startTestApp, storeDirs, tmpDir, waitFor, type Recorder } from './helpers.js';
import { downsample, type Vol } from './pyramid-reference.js';
import { reducePlane } from '../workers/kernels/pyramid.js';
import { chunkBytesOf, histogramToTiles, type TileGeometry } from '../workers/kernels/tiles.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

interface Case {
  name: string;
  w: number;
  h: number;
  dtype: Dtype;
  Z: number;
  C: number;
  T: number;
  chunk: number[];
  shard: number[];
  sharding: boolean;
  codec: string;
  levels: number | 'auto';
  method: 'mean' | 'max' | 'decimate';
  /** t/c/z of frames never published (lost): fill value 0 in level 0. */
  skip?: Set<string>;
  /** Levels expected (1 + extra). */
  expectLevels: number;
}

function frame(c: Case, t: number, ch: number, z: number): Uint16Array | Uint8Array {
  const rnd = mulberry32(7 + t * 1000 + ch * 100 + z);
  const max = c.dtype === 'uint16' ? 65535 : 255;
  const px = c.dtype === 'uint16' ? new Uint16Array(c.w * c.h) : new Uint8Array(c.w * c.h);
  // Sparse bright samples on a noisy floor: means round often (odd sums), max and decimate differ.
  for (let i = 0; i < px.length; i++) px[i] = rnd() < 0.03 ? 1 + Math.floor(rnd() * (max - 1)) : 100 + Math.floor(rnd() * 13) + (i % 5);
  return px;
}

function level0(c: Case): Vol {
  const data = new Float64Array(c.T * c.C * c.Z * c.h * c.w);
  for (let t = 0; t < c.T; t++)
    for (let ch = 0; ch < c.C; ch++)
      for (let z = 0; z < c.Z; z++) {
        if (c.skip?.has(`${t}/${ch}/${z}`)) continue;
        data.set(frame(c, t, ch, z), ((t * c.C + ch) * c.Z + z) * c.h * c.w);
      }
  return { shape: [c.T, c.C, c.Z, c.h, c.w], data };
}

async function publishAll(c: Case, ring: string, rec: Recorder): Promise<void> {
  const w = RingWriter.create(ring, {
    width: c.w,
    height: c.h,
    dtype: c.dtype,
    bitDepth: c.dtype === 'uint16' ? 16 : 8,
    slotCount: 16,
    zPlanes: c.Z,
    channels: c.C,
    views: 1,
  });
  w.startAcquisition();
  let n = 0;
  for (let t = 0; t < c.T; t++)
    for (let ch = 0; ch < c.C; ch++)
      for (let z = 0; z < c.Z; z++) {
        if (c.skip?.has(`${t}/${ch}/${z}`)) continue;
        w.publish(new Uint8Array(frame(c, t, ch, z).buffer), {
          cameraCounter: n,
          timestampNs: Date.now() * 1e6,
          t,
          c: ch,
          z,
          view: 0,
          flags: 0,
        });
        n++;
        if (n % 8 === 0) await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= n - 4, 30000, `frame ${n - 4}`);
      }
  await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= n, 30000, 'all frames processed');
  w.finishAcquisition();
  w.close();
}

async function writeStore(c: Case): Promise<string> {
  const out = tmpDir(`pyr-${c.name}`);
  const ring = shmPath(`pyr-${c.name}`);
  cleanup.push(out, ring);
  const { app, rec } = await startTestApp({
    source: `shm:${ring}`,
    ring_wait_seconds: 10,
    storage: {
      out,
      codec: c.codec,
      chunk: c.chunk,
      shard: c.shard,
      sharding: c.sharding,
      name: c.name,
      levels: c.levels,
      downsample: c.method,
    },
  });
  try {
    await publishAll(c, ring, rec);
    await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 30000, 'acquisition finalized');
    // /metrics: worker seconds for every level built by reduce jobs, no failed level block
    const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
    for (let k = 1; k < c.expectLevels; k++) {
      const m = new RegExp(`^spimstream_pyramid_seconds_total\\{camera="[^"]*",level="${k}"\\} (\\S+)$`, 'm').exec(text);
      expect(Number(m?.[1]), `pyramid seconds of level ${k}`).toBeGreaterThan(0);
    }
    expect(text).not.toMatch(/^spimstream_pyramid_failures_total\{[^}]*\} [1-9]/m);
  } finally {
    await app.stop();
  }
  expect(rec.lost.overrun).toBe(0);
  const dirs = storeDirs(out);
  expect(dirs.length).toBe(1);
  return dirs[0];
}

async function readLevel(dir: string, k: number): Promise<Vol> {
  const arr = await zarr.open.v3(zarr.root(new FileSystemStore(dir)).resolve(String(k)), { kind: 'array' });
  const r = await zarr.get(arr, null);
  return { shape: arr.shape, data: Float64Array.from(r.data as Uint16Array | Uint8Array) };
}

function firstDifference(got: Vol, want: Vol): string | null {
  if (JSON.stringify(got.shape) !== JSON.stringify(want.shape))
    return `shape ${JSON.stringify(got.shape)} != ${JSON.stringify(want.shape)}`;
  for (let i = 0; i < want.data.length; i++) if (got.data[i] !== want.data[i]) return `element ${i}: ${got.data[i]} != ${want.data[i]}`;
  return null;
}

const cases: Case[] = [
  {
    name: 'u16-odd-mean-auto-holes',
    w: 37,
    h: 21,
    dtype: 'uint16',
    Z: 5,
    C: 2,
    T: 2,
    chunk: [2, 8, 8],
    shard: [4, 0, 0],
    sharding: true,
    codec: 'blosc-zstd',
    levels: 'auto',
    method: 'mean',
    expectLevels: 4,
    // a lost plane mid-stack, and a partial last stack (its last two planes never came)
    skip: new Set(['0/1/2', '1/0/3', '1/0/4', '1/1/4']),
  },
  {
    name: 'u8-odd-max',
    w: 33,
    h: 17,
    dtype: 'uint8',
    Z: 3,
    C: 1,
    T: 2,
    chunk: [4, 16, 16],
    shard: [0, 0, 0],
    sharding: true,
    codec: 'blosc-lz4',
    levels: 2,
    method: 'max',
    expectLevels: 3,
    skip: new Set(['1/0/0']),
  },
  {
    name: 'u16-2d-decimate-unsharded',
    w: 40,
    h: 30,
    dtype: 'uint16',
    Z: 1,
    C: 1,
    T: 3,
    chunk: [2, 16, 16],
    shard: [0, 0, 0],
    sharding: false,
    codec: 'gzip',
    levels: 2,
    method: 'decimate',
    expectLevels: 3,
  },
  {
    name: 'u16-mean-big-chunk',
    w: 64,
    h: 48,
    dtype: 'uint16',
    Z: 7,
    C: 1,
    T: 1,
    chunk: [32, 256, 256],
    shard: [0, 0, 0],
    sharding: true,
    codec: 'blosc-zstd',
    levels: 3,
    method: 'mean',
    expectLevels: 4,
  },
];

describe('live multiscale pyramid', () => {
  for (const c of cases) {
    it(`${c.name}: every level equals the reference downsampling of level 0, bit-exact`, async () => {
      const dir = await writeStore(c);
      const group = JSON.parse(fs.readFileSync(path.join(dir, 'zarr.json'), 'utf8')) as {
        attributes: {
          ome: {
            multiscales: {
              datasets: { path: string; coordinateTransformations: { type: string; scale?: number[]; translation?: number[] }[] }[];
              type?: string;
            }[];
          };
        };
      };
      const ms = group.attributes.ome.multiscales[0];
      expect(ms.datasets.map((d) => d.path)).toEqual(Array.from({ length: c.expectLevels }, (_, k) => String(k)));
      expect(ms.type).toBe(c.method);
      let want = level0(c);
      for (let k = 0; k < c.expectLevels; k++) {
        if (k > 0) want = downsample(want, c.method);
        const got = await readLevel(dir, k);
        expect(firstDifference(got, want), `level ${k}`).toBeNull();
        // scale: level 0's times 2^k in y and x; a window's centre sits (2^k - 1) / 2 level-0 pixels in
        const scale0 = ms.datasets[0].coordinateTransformations[0].scale as number[];
        const scale = ms.datasets[k].coordinateTransformations[0].scale as number[];
        expect(scale[4] / scale0[4]).toBeCloseTo(2 ** k);
        expect(scale[3] / scale0[3]).toBeCloseTo(2 ** k);
        const tr = ms.datasets[k].coordinateTransformations.find((x) => x.type === 'translation');
        if (k > 0 && c.method !== 'decimate') expect(tr?.translation?.[4]).toBeCloseTo(((2 ** k - 1) / 2) * scale0[4]);
        else expect(tr).toBeUndefined();
      }
      const all = fs.readdirSync(dir, { recursive: true }) as string[];
      expect(all.filter((f) => f.includes('.tmp-'))).toEqual([]);
    });
  }

  it('numpy agrees: mean with round-half-to-even over 2 x 2 x 2 windows, odd edges', async () => {
    const c = cases[0];
    const dir = await writeStore({ ...c, name: 'numpy-check' });
    const raw = path.join(dir, '..', 'level0.f64');
    fs.writeFileSync(raw, level0(c).data);
    const got = await readLevel(dir, 1);
    const py = [
      'import numpy as np, sys',
      `a = np.fromfile(sys.argv[1]).reshape(${c.T}, ${c.C}, ${c.Z}, ${c.h}, ${c.w})`,
      'pad = [(0, 0), (0, 0)] + [(0, s % 2) for s in a.shape[2:]]',
      'v = np.pad(a, pad, constant_values=np.nan)',
      'T, C, Z, H, W = v.shape',
      'b = v.reshape(T, C, Z // 2, 2, H // 2, 2, W // 2, 2)',
      'm = np.round(np.nanmean(b, axis=(3, 5, 7)))',
      'sys.stdout.write(" ".join(str(int(x)) for x in m.ravel()))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', py, raw], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(r.stderr).toBe('');
    const want = r.stdout.split(' ').map(Number);
    expect(want.length).toBe(got.data.length);
    expect(firstDifference(got, { shape: got.shape, data: Float64Array.from(want) })).toBeNull();
  });

  it('the 2 x 2 sum kernel reading 32-bit words equals the per-pixel kernel, full 16-bit range', () => {
    const w = 258;
    const h = 34;
    const rnd = mulberry32(5);
    const buf = new ArrayBuffer(w * h * 2 + 2);
    const aligned = new Uint16Array(buf, 0, w * h);
    for (let i = 0; i < aligned.length; i++) aligned[i] = rnd() < 0.1 ? 65535 : Math.floor(rnd() * 65536);
    const odd = new Uint16Array(buf, 2, w * h); // not 4-byte aligned: the per-pixel path
    const fast = new Uint32Array((w / 2) * (h / 2));
    reducePlane(aligned, w, h, 'mean', fast);
    odd.set(aligned.slice());
    const plain = new Uint32Array(fast.length);
    reducePlane(odd, w, h, 'mean', plain);
    expect(plain.findIndex((v, i) => v !== fast[i])).toBe(-1);
    expect(Math.max(...fast)).toBeGreaterThan(65535 * 2); // sums beyond 16 bits came through
  });

  it('the histogram pass leaves the same 2 x 2 sums as the separate pass (shuffled and not, odd height, several tiles)', () => {
    const w = 72;
    const h = 27;
    const rnd = mulberry32(9);
    const px = new Uint16Array(w * h);
    for (let i = 0; i < px.length; i++) px[i] = Math.floor(rnd() * 65536);
    const want = new Uint32Array(36 * 14);
    const odd = new Uint16Array(new ArrayBuffer(px.byteLength + 2), 2, px.length);
    odd.set(px);
    reducePlane(odd, w, h, 'mean', want); // per-pixel path: the reference
    for (const shuffled of [true, false]) {
      const g: TileGeometry = { width: w, height: h, bytesPerPixel: 2, cz: 2, cy: 8, cx: 24, tilesX: 3, tilesY: 4, shuffled };
      const got = new Uint32Array(want.length);
      const done = histogramToTiles(px, new Uint32Array(65536), new SharedArrayBuffer(12 * chunkBytesOf(g)), 1, g, new Uint8Array(12), got);
      expect(done).toBe(true);
      expect(
        got.findIndex((v, i) => v !== want[i]),
        `shuffled ${shuffled}`,
      ).toBe(-1);
    }
  });

  it('refuses an odd chunk z with levels on, in one line', async () => {
    const { buildConfig } = await import('../src/config/config.js');
    expect(() => buildConfig({ storage: { levels: 1, chunk: [3, 64, 64], shard: [0, 0, 0] } })).toThrow(
      /^config key "storage.levels": needs an even storage.chunk z \(got 3\)[^\n]*$/,
    );
    expect(() => buildConfig({ storage: { levels: 'some' } })).toThrow(/storage.levels/);
    expect(() => buildConfig({ storage: { levels: 17 } })).toThrow(/"storage.levels": 17 must be an integer >= 0 and <= 16 or "auto"/);
    expect(() => buildConfig({ storage: { downsample: 'median' } })).toThrow(/storage.downsample/);
  });
});
