/**
 * spimstream started after the producer finished, as a new user following the README might: the
 * frames still intact in the ring are read and stored, the rest of that acquisition is counted
 * (overrun, "published before spimstream attached"), and a sidecar attaching again later (a
 * restart) does not store the same acquisition twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { checksumPixels } from '../workers/kernels/stats.js';
import { BIN, ROOT, exited, openArray, readFrameLog, readPlane, shmPath, spawnNode, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { recursive: true, force: true });
});

/** The Python producer publishes `n` frames into a 16-slot ring, finishes and exits, leaving the ring. */
async function produce(ring: string, log: string, n: number): Promise<void> {
  const py = spawn('python3', [path.join(ROOT, 'test/fixtures/py_producer.py'), ring, log, String(n), '400'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KEEP_RING: '1' },
  });
  let err = '';
  py.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  expect(await exited(py), err).toBe(0);
}

/** A real sidecar on the ring until `until` holds in its log; returns the log. */
async function sidecar(ring: string, out: string, until: RegExp): Promise<string> {
  const p = spawnNode([BIN, 'run', '--source', `shm:${ring}`, '--out', out, '--port', '0', '--set', 'storage.chunk=[4,64,96]']);
  try {
    await waitFor(() => until.test(p.output()), 20_000, `${until} in the log: ${p.output()}`);
  } finally {
    p.kill('SIGTERM');
    expect(await exited(p), p.output()).toBe(0);
  }
  return p.output();
}

const field = (log: string, name: string) => Number(new RegExp(`acquisition finished .*\\b${name}=(\\d+)`).exec(log)?.[1]);

describe('attaching after the acquisition finished', () => {
  for (const [n, inRing] of [
    [12, 12],
    [40, 16],
  ] as const) {
    it(`${n} frames published before spimstream started (16 slots): ${inRing} stored bit-exact, ${n - inRing} counted overrun; a restart stores nothing again`, async () => {
      const ring = shmPath(`late-attach-${n}`);
      const dir = tmpDir('late-attach');
      const out = path.join(dir, 'data');
      const log = path.join(dir, 'frames.jsonl');
      cleanup.push(ring, `${ring}.lock`, `${ring}.seen`, dir);
      await produce(ring, log, n);
      const logged = readFrameLog(log);
      expect(logged.length).toBe(n);
      const first = await sidecar(ring, out, /acquisition finished/);
      expect(field(first, 'frames_received')).toBe(inRing);
      expect(field(first, 'frames_overrun')).toBe(n - inRing);
      expect(field(first, 'frames_unstored')).toBe(0);
      const said = first.split('\n').filter((l) => /acquisition 1 finished before spimstream attached/.test(l));
      expect(said.length).toBe(1);
      expect(said[0]).toContain(`its ${inRing} frames still in the ring are read and stored`);
      expect(said[0].includes(`${n - inRing} published before spimstream attached were overwritten`)).toBe(n > inRing);
      if (n > inRing)
        expect(first).toMatch(new RegExp(`frames lost: ring overrun \\(published before spimstream attached.* frames=${n - inRing}`));
      const arr = await openArray(storeDirs(out)[0]);
      let stored = 0;
      for (const f of logged) {
        const plane = (await readPlane(arr, f.t, f.c, f.z)) as Uint16Array;
        if (f.counter >= n - inRing) {
          expect(checksumPixels(plane), `frame ${f.counter}`).toBe(f.checksum);
          stored++;
        } else {
          expect(
            plane.every((v) => v === 0),
            `frame ${f.counter} was overwritten: fill value`,
          ).toBe(true);
        }
      }
      expect(stored).toBe(inRing);
      // A restart: the acquisition was taken in already; nothing is stored again.
      const again = await sidecar(ring, path.join(dir, 'again'), /ring attached/);
      expect(again).not.toMatch(/acquisition started|finished before spimstream attached/);
      expect(storeDirs(path.join(dir, 'again'))).toEqual([]);
    }, 60_000);
  }
});

describe('the seen markers', () => {
  it('a marker whose ring is gone is removed (no litter in /dev/shm); one whose ring exists stays', async () => {
    const { markSeen, pruneSeen, seenFile, wasSeen } = await import('../src/ingest/ring-seen.js');
    const live = shmPath('seen-live');
    const gone = shmPath('seen-gone');
    cleanup.push(live, seenFile(live), gone, seenFile(gone));
    fs.writeFileSync(live, 'x');
    fs.writeFileSync(gone, 'x');
    markSeen(gone, 3);
    expect(wasSeen(gone, 3)).toBe(true);
    fs.rmSync(gone);
    markSeen(live, 1);
    expect(fs.existsSync(seenFile(gone))).toBe(false);
    expect(wasSeen(live, 1)).toBe(true);
    expect(wasSeen(live, 2)).toBe(false);
    pruneSeen(live);
    expect(fs.existsSync(seenFile(live))).toBe(true);
    fs.rmSync(live);
    pruneSeen(live);
    expect(fs.existsSync(seenFile(live))).toBe(false);
  });
});
