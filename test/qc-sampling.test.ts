/**
 * When QC is sampled: only when the frame tasks in flight stand for more of the workers' time than
 * a producer's burst (or half the frame pool). A burst from a real second process is stored and
 * measured in full; an overload is still sampled (test/storage-first.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockAssembler, type ZBlock } from '../src/pipeline/block-assembler.js';
import { sampleReason, sampleThreshold, TaskSeconds } from '../src/pipeline/qc-dispatch.js';
import type { TileGeometry } from '../workers/kernels/tiles.js';
import { checksumPixels } from '../workers/kernels/stats.js';
import {
  BIN,
  exited,
  openArray,
  planeReader,
  readFrameLog,
  shmPath,
  spawnNode,
  startTestApp,
  storeDirs,
  tmpDir,
  waitFor,
} from './helpers.js';

const files: string[] = [];
afterEach(() => {
  for (const f of files.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

describe('QC sampling threshold', () => {
  it('frame tasks the workers clear in 0.25 s, at most half the frame pool, at least 8', () => {
    // 2048² at 300 MB/s: 12 ms a task on 2 workers clears 41 in 0.25 s; the 32-slot pool caps it at 16.
    expect(sampleThreshold({ poolSlots: 32, workers: 2, taskSeconds: 0.012 })).toBe(16);
    // Slow tasks: what 2 workers clear in 0.25 s.
    expect(sampleThreshold({ poolSlots: 32, workers: 2, taskSeconds: 0.05 })).toBe(10);
    expect(sampleThreshold({ poolSlots: 128, workers: 4, taskSeconds: 0.01 })).toBe(64);
    expect(sampleThreshold({ poolSlots: 128, workers: 4, taskSeconds: 0.02 })).toBe(50);
    // Never below 8 (very slow tasks, a tiny pool, no pool yet).
    expect(sampleThreshold({ poolSlots: 32, workers: 1, taskSeconds: 0.2 })).toBe(8);
    expect(sampleThreshold({ poolSlots: 6, workers: 2, taskSeconds: 0.001 })).toBe(8);
    expect(sampleThreshold({ poolSlots: 0, workers: 2, taskSeconds: 0 })).toBe(8);
    // No task measured yet: half the pool.
    expect(sampleThreshold({ poolSlots: 128, workers: 2, taskSeconds: 0 })).toBe(64);
  });

  it('the reason: the z-block pool over half used first (encodes behind), then the frame tasks (workers behind)', () => {
    expect(sampleReason({ encodesBehind: false, frameTasks: 15, threshold: 16 })).toBeNull();
    expect(sampleReason({ encodesBehind: false, frameTasks: 16, threshold: 16 })).toBe('workers-behind');
    expect(sampleReason({ encodesBehind: true, frameTasks: 0, threshold: 16 })).toBe('encodes-behind');
    expect(sampleReason({ encodesBehind: true, frameTasks: 40, threshold: 16 })).toBe('encodes-behind');
  });

  it('encodes behind: the pool over half used and a block sealed before the filling one still in use at its half', () => {
    // Blocks of 4 planes, stacks of 8 planes (two blocks a stack), 4 blocks in the pool.
    const g: TileGeometry = { width: 16, height: 16, cx: 16, cy: 16, cz: 4, tilesX: 1, tilesY: 1, bytesPerPixel: 2, shuffled: true };
    const pool = (capacity: number) => {
      const ready: ZBlock[] = [];
      const a = new BlockAssembler(g, 8, capacity, (b) => ready.push(b));
      // A frame task writes its plane and is done at once; encodes finish only when released below.
      const frame = (t: number, c: number, z: number) => a.copied(a.assign(t, c, z, 0, 0)!.block);
      return { a, ready, frame };
    };
    // One stream whose encodes are slow: two sealed blocks still in use while the third fills.
    const one = pool(4);
    for (let z = 0; z < 8; z++) one.frame(0, 0, z);
    one.frame(1, 0, 0);
    expect(one.a.inUse).toBe(3);
    expect(one.a.encodesBehind(), 'the new block is not half full yet').toBe(false);
    one.frame(1, 0, 1);
    expect(one.a.encodesBehind(), 'half full, two blocks sealed before it still encoding').toBe(true);
    for (const b of one.ready.splice(0)) one.a.release(b);
    expect(one.a.encodesBehind(), 'encodes done').toBe(false);
    // Two channels interleaved per plane: both blocks seal together and both next ones open at once.
    const two = pool(4);
    for (let z = 0; z < 4; z++) for (const c of [0, 1]) two.frame(0, c, z);
    two.frame(0, 0, 4);
    two.frame(0, 1, 4);
    expect(two.a.inUse).toBe(4);
    expect(two.a.encodesBehind(), 'a full pool right after the boundary is normal').toBe(false);
    for (const b of two.ready.splice(0)) two.a.release(b);
    for (const c of [0, 1]) two.frame(0, c, 5);
    expect(two.a.encodesBehind(), 'the previous blocks encoded within half a block').toBe(false);
    // Slow encodes: the previous blocks still in use when these are half full.
    for (const c of [0, 1]) two.frame(0, c, 6);
    for (const c of [0, 1]) two.frame(0, c, 7);
    for (const c of [0, 1]) two.frame(1, c, 0);
    for (const c of [0, 1]) two.frame(1, c, 1);
    expect(two.a.encodesBehind()).toBe(true);
    // A block sealed after the filling one opened has only just started encoding: not behind.
    const three = pool(3);
    for (let z = 0; z < 4; z++) for (const c of [0, 1]) three.frame(0, c, z);
    for (const b of three.ready.splice(0)) three.a.release(b);
    for (let z = 4; z < 7; z++) for (const c of [0, 1]) three.frame(0, c, z);
    three.frame(0, 0, 7);
    expect(three.a.inUse).toBe(2);
    expect(three.a.encodesBehind(), "channel 0's block sealed after channel 1's opened").toBe(false);
    // A larger pool, half used or less: not behind, whatever the age.
    const big = pool(8);
    for (let z = 0; z < 8; z++) big.frame(0, 0, z);
    for (let z = 0; z < 3; z++) big.frame(1, 0, z);
    expect(big.a.inUse).toBe(3);
    expect(big.a.encodesBehind()).toBe(false);
  });

  it("a frame task's seconds: the median of the last 16, none before 8, cold first tasks and drift planes ignored", () => {
    const t = new TaskSeconds();
    // Each worker's first task (JIT not yet done), then steady 3 ms tasks.
    for (const s of [0.09, 0.085, 0.003, 0.004, 0.003, 0.003, 0.005]) t.add(s);
    expect(t.value, 'fewer than 8 measured').toBe(0);
    t.add(0.003);
    expect(t.value).toBeCloseTo(0.0035, 9);
    for (let i = 0; i < 15; i++) t.add(i === 7 ? 0.06 : 0.01);
    expect(t.value, 'the last 16 only; a drift plane does not move the median').toBeCloseTo(0.01, 9);
    t.reset();
    t.add(0.02);
    expect(t.value, 'a new acquisition measures again').toBe(0);
  });

  it('a burst of 40 frames published at once by another process: every frame stored bit-exact with full QC', async () => {
    const ring = shmPath('qcburst');
    const dir = tmpDir('qcburst');
    const log = path.join(dir, 'frames.jsonl');
    files.push(ring, `${ring}.lock`, `${ring}.seen`, dir);
    // 512² frames: the default 256 MiB pool holds 512 of them; the ring's 64 slots hold the burst.
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { out: path.join(dir, 'data') } });
    try {
      // Pre-rendered frames at 10 000 fps (4 ms for all 40): a camera buffer catching up. They reach the
      // pipeline faster than the workers clear them (a fixed 8 in flight sampled 20 to 30 of them).
      const sim = spawnNode([
        BIN,
        'sim',
        '--ring',
        ring,
        '--width',
        '512',
        '--height',
        '512',
        '--z-planes',
        '32',
        '--channels',
        '1',
        '--fps',
        '10000',
        '--frames',
        '40',
        '--precomputed',
        '4',
        '--slots',
        '64',
        '--log-frames',
        log,
      ]);
      expect(await exited(sim), sim.output()).toBe(0);
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 1, 60_000, 'the acquisition finished');
    } finally {
      await app.stop();
    }
    const s = rec.events['acquisition-finished']![0].summary;
    expect(s.framesReceived).toBe(40);
    expect(s.framesUnstored).toBe(0);
    expect(s.qcSampled, 'a burst the frame pool holds is not QC-sampled').toBe(0);
    expect(s.qcSampledReasons).toEqual({});
    const qc = rec.events['frame-qc'] ?? [];
    expect(qc.length).toBe(40);
    for (const e of qc) {
      expect(e.qc.sampled).toBe(false);
      expect(e.sampledReason).toBeNull();
      expect(Object.keys(e.qc.focus).sort(), `frame ${e.meta.seq} focus measured`).toEqual(['dcts', 'tenengrad']);
    }
    const [store] = storeDirs(path.join(dir, 'data'));
    const plane = planeReader(await openArray(store));
    const frames = readFrameLog(log);
    expect(frames.length).toBe(40);
    for (const f of frames) expect(checksumPixels(await plane(f.t, f.c, f.z)), `frame ${f.seq} stored bit-exact`).toBe(f.checksum);
  });
});
