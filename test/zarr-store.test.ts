import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Blosc } from 'numcodecs';
import { RingWriter } from '../src/ingest/ring-writer.js';
import type { Dtype } from '../src/ingest/ring-layout.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import { openArray, readPlane, SMALL_RING, shmPath, startTestApp, storeDirs, tmpDir, waitFor, type Recorder } from './helpers.js';

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
  codec: string;
  chunk: number[];
  shard: number[];
  sharding: boolean;
  /** ring frame numbers the producer skips (never publishes) to leave holes filled with 0 */
  skip?: Set<string>;
}

function makeFrame(c: Case, t: number, ch: number, z: number): Uint16Array | Uint8Array {
  const rnd = mulberry32(1 + t * 1000 + ch * 100 + z);
  const n = c.w * c.h;
  const px = c.dtype === 'uint16' ? new Uint16Array(n) : new Uint8Array(n);
  const max = c.dtype === 'uint16' ? 65535 : 255;
  for (let i = 0; i < n; i++) {
    // mostly camera-like values, some full-range noise, never 0 so holes are distinguishable
    px[i] = rnd() < 0.05 ? 1 + Math.floor(rnd() * (max - 1)) : Math.min(max, 90 + Math.floor(rnd() * 30) + (i % 7));
  }
  return px;
}

async function pushAcquisition(c: Case, ring: string, rec: Recorder): Promise<number> {
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
  for (let t = 0; t < c.T; t++) {
    for (let ch = 0; ch < c.C; ch++) {
      for (let z = 0; z < c.Z; z++) {
        if (c.skip?.has(`${t}/${ch}/${z}`)) continue;
        const px = makeFrame(c, t, ch, z);
        w.publish(new Uint8Array(px.buffer), { cameraCounter: n, timestampNs: Date.now() * 1e6, t, c: ch, z, view: 0, flags: 0 });
        n++;
        // Pace the producer so nothing overruns: this test is about storage, not loss.
        if (n % 8 === 0) await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= n - 4, 20000, `frame ${n - 4}`);
      }
    }
  }
  await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= n, 20000, 'all frames processed');
  w.finishAcquisition();
  w.close();
  return n;
}

async function writeStore(c: Case): Promise<{ dir: string; rec: Recorder; frames: number }> {
  const out = tmpDir(`zarr-${c.name}`);
  const ring = shmPath(c.name);
  cleanup.push(out, ring, `${ring}.seen`);
  const { app, rec } = await startTestApp({
    source: `shm:${ring}`,
    ring_wait_seconds: 10,
    storage: { out, codec: c.codec, chunk: c.chunk, shard: c.shard, sharding: c.sharding, name: c.name },
    channels: [
      { name: 'a', color: 'FF0000' },
      { name: 'b', color: '00FF00' },
    ],
  });
  let frames = 0;
  try {
    const pushing = pushAcquisition(c, ring, rec);
    frames = await pushing;
    await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 20000, 'acquisition finalized');
  } finally {
    await app.stop();
  }
  expect(rec.lost.overrun).toBe(0);
  const dirs = storeDirs(out);
  expect(dirs.length).toBe(1);
  return { dir: dirs[0], rec, frames };
}

async function expectBitExact(c: Case, dir: string): Promise<void> {
  const arr = await openArray(dir);
  expect(arr.shape).toEqual([c.T, c.C, c.Z, c.h, c.w]);
  expect(arr.dtype).toBe(c.dtype);
  for (let t = 0; t < c.T; t++) {
    for (let ch = 0; ch < c.C; ch++) {
      for (let z = 0; z < c.Z; z++) {
        const got = await readPlane(arr, t, ch, z);
        const want = c.skip?.has(`${t}/${ch}/${z}`)
          ? new (c.dtype === 'uint16' ? Uint16Array : Uint8Array)(c.w * c.h)
          : makeFrame(c, t, ch, z);
        expect(got.length).toBe(want.length);
        if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer)) !== 0) {
          throw new Error(`${c.name}: plane t=${t} c=${ch} z=${z} differs from what the producer wrote`);
        }
      }
    }
  }
}

const cases: Case[] = [
  {
    name: 'u16-odd-sharded-zstd',
    w: 37,
    h: 21,
    dtype: 'uint16',
    Z: 5,
    C: 2,
    T: 3,
    codec: 'blosc-zstd',
    chunk: [2, 16, 16],
    shard: [4, 32, 0],
    sharding: true,
  },
  {
    name: 'u16-odd-unsharded-gzip',
    w: 37,
    h: 21,
    dtype: 'uint16',
    Z: 5,
    C: 2,
    T: 2,
    codec: 'gzip',
    chunk: [2, 16, 16],
    shard: [0, 0, 0],
    sharding: false,
  },
  {
    name: 'u8-1x1-sharded-lz4',
    w: 1,
    h: 1,
    dtype: 'uint8',
    Z: 3,
    C: 1,
    T: 2,
    codec: 'blosc-lz4',
    chunk: [32, 256, 256],
    shard: [0, 0, 0],
    sharding: true,
  },
  {
    name: 'u8-odd-unsharded-zlib',
    w: 33,
    h: 17,
    dtype: 'uint8',
    Z: 3,
    C: 2,
    T: 2,
    codec: 'blosc-zlib',
    chunk: [2, 8, 8],
    shard: [0, 0, 0],
    sharding: false,
  },
  {
    name: 'u16-2000x1500-sharded-gzip',
    w: 2000,
    h: 1500,
    dtype: 'uint16',
    Z: 2,
    C: 1,
    T: 1,
    codec: 'gzip',
    chunk: [32, 256, 256],
    shard: [32, 1024, 0],
    sharding: true,
  },
  {
    name: 'u16-numcodecs-reference-path',
    w: 40,
    h: 24,
    dtype: 'uint16',
    Z: 3,
    C: 1,
    T: 2,
    codec: 'numcodecs-blosc-lz4',
    chunk: [2, 16, 16],
    shard: [0, 0, 0],
    sharding: true,
  },
  {
    name: 'u16-holes-sharded-zstd',
    w: 40,
    h: 24,
    dtype: 'uint16',
    Z: 6,
    C: 1,
    T: 2,
    codec: 'blosc-zstd',
    chunk: [4, 16, 16],
    shard: [0, 0, 0],
    sharding: true,
    skip: new Set(['0/0/1', '1/0/4', '1/0/5']),
  },
];

describe('lossless OME-Zarr v3 store, read back with zarrita', () => {
  for (const c of cases) {
    it(`${c.name}: every plane reads back bit-exact`, async () => {
      const { dir, frames } = await writeStore(c);
      expect(frames).toBe(c.T * c.C * c.Z - (c.skip?.size ?? 0));
      await expectBitExact(c, dir);
      // no temporary files left behind after a clean stop
      const all = fs.readdirSync(dir, { recursive: true }) as string[];
      expect(all.filter((f) => f.includes('.tmp-'))).toEqual([]);
    });
  }

  it('--append continues the time axis of a compatible store, bit-exact', async () => {
    const c: Case = {
      name: 'append',
      w: 32,
      h: 16,
      dtype: 'uint16',
      Z: 2,
      C: 1,
      T: 2,
      codec: 'blosc-zstd',
      chunk: [2, 16, 16],
      shard: [0, 0, 0],
      sharding: true,
    };
    const out = tmpDir('append');
    cleanup.push(out);
    for (const round of [0, 1]) {
      const ring = shmPath(`append${round}`);
      cleanup.push(ring, `${ring}.seen`);
      const { app, rec } = await startTestApp(
        { source: `shm:${ring}`, storage: { out, codec: c.codec, chunk: c.chunk, shard: c.shard, name: 'same' } },
        { append: round === 1 },
      );
      try {
        await pushAcquisition(c, ring, rec);
        await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 20000, 'finalized');
      } finally {
        await app.stop();
      }
    }
    const arr = await openArray(path.join(out, 'same.ome.zarr'));
    expect(arr.shape).toEqual([4, 1, 2, 16, 32]);
    for (let t = 0; t < 4; t++) {
      for (let z = 0; z < 2; z++) {
        const got = await readPlane(arr, t, 0, z);
        const want = makeFrame(c, t % 2, 0, z); // the second acquisition's t=0 landed at t=2
        expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer)), `t=${t} z=${z}`).toBe(0);
      }
    }
  });

  it('one sidecar run, several acquisitions: each its own store', async () => {
    const c: Case = {
      name: 'multi',
      w: 16,
      h: 16,
      dtype: 'uint8',
      Z: 2,
      C: 1,
      T: 1,
      codec: 'gzip',
      chunk: [2, 16, 16],
      shard: [0, 0, 0],
      sharding: true,
    };
    const out = tmpDir('multi');
    const ring = shmPath('multi');
    cleanup.push(out, ring, `${ring}.seen`);
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      storage: { out, codec: c.codec, chunk: c.chunk, shard: c.shard, name: 'acq{acq}' },
    });
    try {
      const w = RingWriter.create(ring, SMALL_RING);
      for (let acq = 1; acq <= 3; acq++) {
        w.startAcquisition();
        for (let z = 0; z < 2; z++) {
          const px = new Uint8Array(256).fill(10 * acq + z);
          w.publish(px, { cameraCounter: acq * 10 + z, timestampNs: Date.now() * 1e6, t: 0, c: 0, z, view: 0, flags: 0 });
        }
        await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= acq * 2, 5000, `acquisition ${acq}`);
        w.finishAcquisition();
        await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= acq, 5000, `acquisition ${acq} finalized`);
      }
      w.close();
    } finally {
      await app.stop();
    }
    expect(storeDirs(out).map((d) => path.basename(d))).toEqual(['acq1.ome.zarr', 'acq2.ome.zarr', 'acq3.ome.zarr']);
    for (let acq = 1; acq <= 3; acq++) {
      const arr = await openArray(path.join(out, `acq${acq}.ome.zarr`));
      expect((await readPlane(arr, 0, 0, 1))[5]).toBe(10 * acq + 1);
    }
  });

  it('a ring with two views gives one OME-Zarr image per view', async () => {
    const out = tmpDir('views');
    const ring = shmPath('views');
    cleanup.push(out, ring, `${ring}.seen`);
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      storage: { out, codec: 'blosc-zstd', chunk: [2, 16, 16], shard: [0, 0, 0], name: 'mv' },
    });
    try {
      const w = RingWriter.create(ring, {
        width: 16,
        height: 8,
        dtype: 'uint16',
        bitDepth: 16,
        slotCount: 8,
        zPlanes: 2,
        channels: 1,
        views: 2,
      });
      w.startAcquisition();
      let n = 0;
      for (const view of [0, 1]) {
        for (let z = 0; z < 2; z++) {
          w.publish(new Uint8Array(new Uint16Array(128).fill(1000 + 100 * view + z).buffer), {
            cameraCounter: n++,
            timestampNs: Date.now() * 1e6,
            t: 0,
            c: 0,
            z,
            view,
            flags: 0,
          });
        }
      }
      await waitFor(() => (rec.events['frame-qc']?.length ?? 0) >= 4, 5000, 'frames');
      w.finishAcquisition();
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 5000, 'finalized');
      w.close();
    } finally {
      await app.stop();
    }
    expect(storeDirs(out).map((d) => path.basename(d))).toEqual(['mv_view0.ome.zarr', 'mv_view1.ome.zarr']);
    for (const view of [0, 1]) {
      const arr = await openArray(path.join(out, `mv_view${view}.ome.zarr`));
      for (let z = 0; z < 2; z++) expect(Array.from(await readPlane(arr, 0, 0, z)).every((v) => v === 1000 + 100 * view + z)).toBe(true);
    }
  });

  it('an independent reader decodes a shard by hand from the spec (index -> crc32c -> blosc) to the same pixels', async () => {
    const c = cases[0];
    const { dir } = await writeStore(c);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, '0', 'zarr.json'), 'utf8'));
    const sh = meta.codecs[0];
    expect(sh.name).toBe('sharding_indexed');
    expect(sh.configuration.index_codecs).toEqual([{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'crc32c' }]);
    const inner: number[] = sh.configuration.chunk_shape; // [1,1,2,16,16]
    const shardShape: number[] = meta.chunk_grid.configuration.chunk_shape; // [1,1,4,32,48]
    const per = shardShape.map((s, i) => s / inner[i]);
    const nInner = per.reduce((a, b) => a * b, 1);
    // shard (t=1, c=1, z-shard 0, y 0, x 0)
    const file = fs.readFileSync(path.join(dir, '0', 'c', '1', '1', '0', '0', '0'));
    const idxStart = file.length - (16 * nInner + 4);
    const dv = new DataView(file.buffer, file.byteOffset, file.length);
    const bitwiseCrc = (d: Uint8Array) => {
      let x = 0xffffffff;
      for (const b of d) {
        x ^= b;
        for (let k = 0; k < 8; k++) x = x & 1 ? (x >>> 1) ^ 0x82f63b78 : x >>> 1;
      }
      return (x ^ 0xffffffff) >>> 0;
    };
    expect(dv.getUint32(file.length - 4, true)).toBe(bitwiseCrc(file.subarray(idxStart, file.length - 4)));
    const blosc = Blosc.fromConfig({ cname: 'zstd', clevel: 1, shuffle: 1, blocksize: 0 });
    let decoded = 0;
    for (let i = 0; i < nInner; i++) {
      const off = dv.getBigUint64(idxStart + 16 * i, true);
      const nb = dv.getBigUint64(idxStart + 16 * i + 8, true);
      if (off === 0xffffffffffffffffn) continue;
      const chunk = file.subarray(Number(off), Number(off + nb));
      // inner codecs: bytes -> blosc -> crc32c
      const body = chunk.subarray(0, chunk.length - 4);
      expect(new DataView(chunk.buffer, chunk.byteOffset + chunk.length - 4).getUint32(0, true)).toBe(bitwiseCrc(body));
      const raw = (await blosc.decode(body)) as Uint8Array;
      const px = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
      // inner chunk i in C order over per = [1,1,2,2,3] -> (zi, yi, xi)
      const xi = i % per[4];
      const yi = Math.floor(i / per[4]) % per[3];
      const zi = Math.floor(i / (per[4] * per[3]));
      const [cz, cy, cx] = inner.slice(2);
      for (let z = 0; z < cz; z++) {
        const zz = zi * cz + z;
        if (zz >= c.Z) continue;
        const want = makeFrame(c, 1, 1, zz);
        for (let y = 0; y < cy; y++) {
          for (let x = 0; x < cx; x++) {
            const Y = yi * cy + y;
            const X = xi * cx + x;
            const got = px[(z * cy + y) * cx + x];
            expect(got).toBe(Y < c.h && X < c.w ? want[Y * c.w + X] : 0);
          }
        }
      }
      decoded++;
    }
    expect(decoded).toBe(2 * 2 * 3);
  });

  it('gzip chunks are plain RFC 1952 streams that any gunzip reads', async () => {
    const c = cases[1];
    const { dir } = await writeStore(c);
    const chunkFile = path.join(dir, '0', 'c', '0', '0', '0', '0', '0');
    const raw = zlib.gunzipSync(fs.readFileSync(chunkFile).subarray(0, -4));
    const px = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
    const want = makeFrame(c, 0, 0, 0);
    expect(px[0]).toBe(want[0]);
    expect(px[16 + 1]).toBe(want[c.w + 1]);
  });

  it('writes OME-Zarr 0.5 metadata that follows the NGFF 0.5 rules', async () => {
    const c = cases[0];
    const { dir } = await writeStore(c);
    const group = JSON.parse(fs.readFileSync(path.join(dir, 'zarr.json'), 'utf8'));
    const arr = JSON.parse(fs.readFileSync(path.join(dir, '0', 'zarr.json'), 'utf8'));
    checkNgff05(group, arr);
    expect(group.attributes.ome.omero.channels.map((ch: { label: string }) => ch.label)).toEqual(['a', 'b']);
    expect(group.attributes.spimstream.spimstream_version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

/** The NGFF 0.5 image rules (spec sections "multiscales", "axes", "coordinateTransformations", "omero"). */
// biome-ignore lint/suspicious/noExplicitAny: walks the untyped JSON of zarr.json, checked field by field below
function checkNgff05(group: any, arr: any): void {
  expect(group.zarr_format).toBe(3);
  expect(group.node_type).toBe('group');
  const ome = group.attributes.ome;
  expect(ome.version).toBe('0.5');
  expect(Array.isArray(ome.multiscales) && ome.multiscales.length >= 1).toBe(true);
  for (const ms of ome.multiscales) {
    const axes = ms.axes;
    expect(axes.length >= 2 && axes.length <= 5).toBe(true);
    const names = axes.map((a: { name: string }) => a.name);
    expect(new Set(names).size).toBe(names.length);
    const types = axes.map((a: { type: string }) => a.type);
    expect(types.filter((t: string) => t === 'space').length >= 2 && types.filter((t: string) => t === 'space').length <= 3).toBe(true);
    expect(types.filter((t: string) => t === 'time').length <= 1).toBe(true);
    expect(types.filter((t: string) => t === 'channel').length <= 1).toBe(true);
    // order: time, channel, then space
    const rank = (t: string) => (t === 'time' ? 0 : t === 'channel' ? 1 : 2);
    expect([...types].sort((a: string, b: string) => rank(a) - rank(b))).toEqual(types);
    const spaceUnits = ['angstrom', 'micrometer', 'nanometer', 'millimeter', 'meter'];
    for (const a of axes) {
      if (a.type === 'space') expect(spaceUnits).toContain(a.unit);
      if (a.type === 'time') expect(['second', 'millisecond', 'minute', 'hour']).toContain(a.unit);
    }
    expect(ms.datasets.length).toBeGreaterThanOrEqual(1);
    for (const ds of ms.datasets) {
      expect(typeof ds.path).toBe('string');
      const scales = ds.coordinateTransformations.filter((t: { type: string }) => t.type === 'scale');
      expect(scales.length).toBe(1);
      expect(ds.coordinateTransformations[0].type).toBe('scale');
      expect(scales[0].scale.length).toBe(axes.length);
      for (const v of scales[0].scale) expect(v).toBeGreaterThan(0);
    }
    expect(arr.dimension_names).toEqual(names);
    expect(arr.shape.length).toBe(axes.length);
  }
  for (const ch of ome.omero.channels) {
    expect(ch.color).toMatch(/^[0-9A-Fa-f]{6}$/);
    for (const k of ['start', 'end', 'min', 'max']) expect(typeof ch.window[k]).toBe('number');
  }
}
