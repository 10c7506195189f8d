import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { RingReader } from '../src/ingest/ring-reader.js';
import {
  H,
  HEADER_BYTES,
  RingFormatError,
  encodeRingHeader,
  ringFileBytes,
  type FrameMeta,
  type RingGeometry,
} from '../src/ingest/ring-layout.js';
import { shmPath, startTestApp, waitFor } from './helpers.js';

const geom: RingGeometry = { width: 37, height: 21, dtype: 'uint16', bitDepth: 12, slotCount: 8, zPlanes: 4, channels: 2, views: 1 };
const files: string[] = [];
afterEach(() => {
  for (const f of files.splice(0)) fs.rmSync(f, { force: true });
});

function ring(name: string, g = geom): { path: string; w: RingWriter } {
  const p = shmPath(name);
  files.push(p);
  return { path: p, w: RingWriter.create(p, g) };
}

function frame(n: number, g = geom): Uint8Array {
  const px = new Uint16Array(g.width * g.height);
  for (let i = 0; i < px.length; i++) px[i] = (i * 31 + n * 977) & 0xfff;
  return new Uint8Array(px.buffer);
}

const meta = (): FrameMeta => ({ seq: -1, cameraCounter: 0, timestampNs: 0, t: 0, c: 0, z: 0, view: 0, flags: 0 });

describe('ring layout', () => {
  it('round-trips header, slot metadata and pixels', () => {
    const { path, w } = ring('rt');
    w.publish(frame(0), { cameraCounter: 1000, timestampNs: 123456789012345, t: 3, c: 1, z: 2, view: 0, flags: 1 });
    w.publish(frame(1), { cameraCounter: 1001, timestampNs: 123456789099999, t: 3, c: 1, z: 3, view: 0, flags: 2 });
    const r = RingReader.open(path);
    expect(r.header).toMatchObject({
      width: 37,
      height: 21,
      dtype: 'uint16',
      bitDepth: 12,
      slotCount: 8,
      zPlanes: 4,
      channels: 2,
      frameBytes: 37 * 21 * 2,
    });
    expect(r.writeCount()).toBe(2);
    const dst = new Uint8Array(r.header.frameBytes);
    const m = meta();
    expect(r.read(1, dst, m)).toBe('ok');
    expect(Buffer.compare(Buffer.from(dst), Buffer.from(frame(1)))).toBe(0);
    expect(m).toEqual({ seq: 1, cameraCounter: 1001, timestampNs: 123456789099999, t: 3, c: 1, z: 3, view: 0, flags: 2 });
    expect(r.read(2, dst, m)).toBe('not-yet');
    r.close();
    w.close();
  });

  it('detects a torn write: a slot whose seq_begin moved on is never returned as valid', () => {
    const { path, w } = ring('torn');
    for (let i = 0; i < 8; i++) w.publish(frame(i), { cameraCounter: i, timestampNs: i, t: 0, c: 0, z: 0, view: 0, flags: 0 });
    const r = RingReader.open(path);
    const dst = new Uint8Array(r.header.frameBytes);
    expect(r.read(0, dst, meta())).toBe('ok');
    // The producer starts overwriting slot 0 with frame 8 but has not finished it.
    w.beginWithoutFinishing(8);
    expect(r.read(0, dst, meta())).toBe('overwritten');
    expect(r.read(8, dst, meta())).toBe('not-yet');
    r.close();
    w.close();
  });

  it('refuses bad rings with a one-line error naming the field', () => {
    const cases: [string, (b: Uint8Array, dv: DataView) => void, RegExp, number?][] = [
      [
        'magic',
        (b) => {
          b[0] = 0x58;
        },
        /bad ring .*: magic: expected "SPIMRING"/,
      ],
      ['version', (_b, dv) => dv.setUint32(H.version, 7, true), /: version: 7 is not supported/],
      ['width', (_b, dv) => dv.setUint32(H.width, 0, true), /: width: 0 is outside/],
      ['dtype', (_b, dv) => dv.setUint32(H.dtype, 3, true), /: dtype: code 3/],
      ['bit depth', (_b, dv) => dv.setUint32(H.bitDepth, 17, true), /: bit_depth: 17 is outside 1..16/],
      ['slot count', (_b, dv) => dv.setUint32(H.slotCount, 1, true), /: slot_count: 1 is outside/],
      ['slot stride', (_b, dv) => dv.setBigUint64(H.slotStride, 100n, true), /: slot_stride: 100 bytes cannot hold/],
      [
        'frame over 4 GiB',
        (_b, dv) => {
          dv.setUint32(H.width, 65536, true);
          dv.setUint32(H.height, 32768, true);
        },
        /: width x height: 65536x32768 uint16 is 4294967296 bytes per frame; payload_bytes \(u32\)/,
      ],
      ['short file', () => undefined, /: file size: \d+ bytes, but 8 slots/, 20_000],
      ['no header', () => undefined, /: file size: 10 bytes is shorter than the 4096-byte header/, 10],
    ];
    for (const [name, corrupt, re, size] of cases) {
      const p = shmPath(`bad-${name.replace(' ', '')}`);
      files.push(p);
      const hdr = encodeRingHeader(geom, 1);
      corrupt(hdr, new DataView(hdr.buffer));
      const full = new Uint8Array(size ?? ringFileBytes(geom));
      full.set(hdr.subarray(0, Math.min(HEADER_BYTES, full.length)));
      fs.writeFileSync(p, full);
      let err: unknown;
      try {
        RingReader.open(p).close();
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(RingFormatError);
      expect((err as Error).message, name).toMatch(re);
      expect((err as Error).message.includes('\n'), name).toBe(false);
    }
  });
});

describe('loss accounting in the pipeline', () => {
  it('counts ring overruns and shed frames exactly when the consumer falls behind by more than the ring', async () => {
    // 512² frames and a 1-MiB pool: the pool holds 4 frames. The main thread is blocked while it
    // writes, so no pool buffer can come back: the ingest thread reads at most 4 frames, sheds what
    // it can before the producer laps it (frame-pool-full, counted unstored), and the ring (8 slots)
    // overruns for the rest. Every frame is read, shed or counted lost, and at least the last half
    // ring is read (shedding stops there).
    const big: RingGeometry = { ...geom, width: 512, height: 512, slotCount: 8 };
    const { path, w } = ring('overrun', big);
    w.startAcquisition();
    const { app, rec } = await startTestApp({
      source: `shm:${path}`,
      storage: { enabled: false },
      pipeline: { workers: 2, frame_pool_mib: 1 },
    });
    try {
      await waitFor(() => app.pipeline.status().attached, 5000, 'attach');
      expect(app.pipeline.framePool?.capacity).toBe(4);
      for (let i = 0; i < 100; i++)
        w.publish(frame(i, big), { cameraCounter: i, timestampNs: Date.now() * 1e6, t: 0, c: 0, z: 0, view: 0, flags: 0 });
      const read = (): number => rec.events['frame-qc']?.length ?? 0;
      const shed = (): number =>
        (rec.events['frames-unstored'] ?? []).filter((e) => e.reason === 'frame-pool-full').reduce((a, e) => a + e.count, 0);
      await waitFor(() => read() + shed() + rec.lost.overrun + rec.lost.torn >= 100, 10000, 'all frames accounted');
      expect(read() + shed() + rec.lost.overrun + rec.lost.torn).toBe(100);
      const seqs = (rec.events['frame-qc'] ?? []).map((e) => e.meta.seq);
      expect(
        seqs.filter((s) => s >= 96).sort((a, b) => a - b),
        "the ring's last 4 frames are read",
      ).toEqual([96, 97, 98, 99]);
      expect(read(), 'at most the pool (4) while blocked, then the ring (8)').toBeLessThanOrEqual(12);
      expect(rec.lost.overrun + shed()).toBeGreaterThanOrEqual(88 - rec.lost.torn);
      // Whether the producer's synchronous loop laps the ring before the ingest thread sheds depends on
      // the scheduler (with a CPU hog beside it, shedding kept up and nothing overran): either way
      // every frame is read, shed or counted, as asserted above.
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(rec.lost.gap).toBe(0);
      expect(
        (rec.events['frames-lost'] ?? []).some((e) => e.late),
        'fell behind, not late',
      ).toBe(false);
    } finally {
      await app.stop();
      w.close();
    }
  });

  it('joining a running acquisition late: frames overwritten before attaching are overrun "late", not "fell behind"', async () => {
    const { path, w } = ring('late');
    w.startAcquisition();
    for (let i = 0; i < 20; i++)
      w.publish(frame(i), { cameraCounter: i, timestampNs: Date.now() * 1e6, t: 0, c: 0, z: 0, view: 0, flags: 0 });
    const { app, rec } = await startTestApp({ source: `shm:${path}`, storage: { enabled: false } });
    try {
      await waitFor(() => (rec.events['frame-qc']?.length ?? 0) + rec.lost.overrun >= 20, 10000, 'all frames accounted');
      const lost = rec.events['frames-lost'] ?? [];
      expect(lost.filter((e) => e.late).reduce((a, e) => a + e.count, 0)).toBe(12);
      expect(lost.filter((e) => !e.late)).toEqual([]);
      expect(rec.events['frame-qc']?.length).toBe(8);
    } finally {
      await app.stop();
      w.close();
    }
  });

  it('counts camera frame-counter gaps exactly and separately from overruns', async () => {
    const { path, w } = ring('gap');
    w.startAcquisition();
    const { app, rec } = await startTestApp({ source: `shm:${path}`, storage: { enabled: false } });
    try {
      await waitFor(() => app.pipeline.status().attached, 5000, 'attach');
      const counters = [10, 11, 12, 15, 16, 20, 21, 22]; // 2 + 3 = 5 frames the camera lost
      for (let i = 0; i < counters.length; i++) {
        w.publish(frame(i), { cameraCounter: counters[i], timestampNs: Date.now() * 1e6, t: 0, c: 0, z: 0, view: 0, flags: 0 });
        await waitFor(() => (rec.events['frame-qc']?.length ?? 0) > i, 5000, `frame ${i}`);
      }
      expect(rec.lost.gap).toBe(5);
      expect(rec.lost.overrun).toBe(0);
      const metrics = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      expect(metrics).toMatch(/spimstream_frames_dropped_total\{camera="cam0",reason="gap"\} 5/);
    } finally {
      await app.stop();
      w.close();
    }
  });
});
