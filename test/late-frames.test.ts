/**
 * A producer that revisits planes after their chunks went to encoding: every revisit is counted
 * unstored (`late`), exactly, and every plane reads back bit-exact as its first frame (zarrita
 * against the producer's numpy reference) — a sealed shard is never replaced.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { LateFrames } from '../src/pipeline/late-frames.js';
import { ROOT, exited, openArray, readPlane, shmPath, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { recursive: true, force: true });
});

describe('late frames', () => {
  it('the rule: another timepoint already left, a sealed z-block, a plane already taken', () => {
    const l = new LateFrames();
    const s = '0/0';
    for (let z = 0; z < 8; z++) {
      expect(l.isLate(s, 0, z, z >> 2)).toBe(false);
      l.assigned(s, 0, z, z >> 2, true);
    }
    expect(l.isLate(s, 0, 3, 0)).toBe(true); // taken
    expect(l.isLate(s, 1, 0, 0)).toBe(false); // a new timepoint
    l.assigned(s, 1, 0, 0, true);
    expect(l.isLate(s, 0, 7, 1)).toBe(true); // left
    expect(l.isLate(s, 1, 5, 1)).toBe(false);
    l.assigned(s, 1, 5, 1, true);
    expect(l.isLate(s, 1, 2, 0)).toBe(true); // z-block 0 sealed when the stream moved to z-block 1
    expect(l.isLate(s, 1, 6, 1)).toBe(false);
    expect(l.isLate(s, 5, 0, 0)).toBe(false); // ahead: never seen
    expect(l.isLate('1/0', 0, 0, 0)).toBe(false); // another stream
    l.assigned(s, 3, 0, 0, false); // no block was free: the plane is not taken, the old block sealed
    expect(l.isLate(s, 3, 0, 0)).toBe(false);
    expect(l.isLate(s, 1, 6, 1)).toBe(true);
  });

  it('a real producer revisiting planes at several depths: each revisit counted late, every plane its first frame', async () => {
    const ring = shmPath('revisit');
    const dir = tmpDir('revisit');
    const out = path.join(dir, 'data');
    const expectedFile = path.join(dir, 'expected.u16');
    cleanup.push(ring, `${ring}.lock`, dir);
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, ring_wait_seconds: 20, storage: { out, chunk: [4, 48, 64] } });
    try {
      const py = spawn('python3', [path.join(ROOT, 'test/fixtures/py_revisits.py'), ring, expectedFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      py.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      py.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      expect(await exited(py), stderr).toBe(0);
      const revisits = Number(stdout.trim());
      expect(revisits).toBe(14); // 7 revisits × 2 channels
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 1, 20000, 'the acquisition to finish');
      const sum = rec.events['acquisition-finished']![0].summary;
      const unstored = (rec.events['frames-unstored'] ?? []).reduce<Record<string, number>>((m, e) => {
        m[e.reason] = (m[e.reason] ?? 0) + e.count;
        return m;
      }, {});
      expect(rec.lost).toEqual({ overrun: 0, gap: 0, torn: 0 });
      expect(unstored).toEqual({ late: revisits });
      expect(sum.framesReceived).toBe(6 * 8 * 2 + revisits);
      expect(sum.framesUnstored).toBe(revisits);
    } finally {
      await app.stop();
    }
    const expected = new Uint16Array(fs.readFileSync(expectedFile).buffer.slice(0));
    const arr = await openArray(storeDirs(out)[0]);
    expect(arr.shape).toEqual([6, 2, 8, 48, 64]);
    let planes = 0;
    for (let t = 0; t < 6; t++) {
      for (let c = 0; c < 2; c++) {
        for (let z = 0; z < 8; z++) {
          const got = await readPlane(arr, t, c, z);
          const off = ((t * 2 + c) * 8 + z) * 48 * 64;
          const want = expected.subarray(off, off + 48 * 64);
          expect(
            Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)),
            `t=${t} c=${c} z=${z}`,
          ).toBe(true);
          planes++;
        }
      }
    }
    expect(planes).toBe(96);
  }, 60_000);
});
