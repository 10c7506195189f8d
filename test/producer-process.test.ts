import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, ROOT, exited, readFrameLog, shmPath, spawnNode, startTestApp, tmpDir, waitFor, type Recorder } from './helpers.js';
import { spawn } from 'node:child_process';

const files: string[] = [];
afterEach(() => {
  for (const f of files.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

/** Every frame the producer wrote is either received with the same checksum, or counted lost: never both, never neither. */
function checkAccounting(rec: Recorder, logged: ReturnType<typeof readFrameLog>): { received: number } {
  const received = new Map<number, number>();
  for (const e of rec.events['frame-qc'] ?? []) {
    expect(received.has(e.meta.seq), `frame ${e.meta.seq} delivered twice`).toBe(false);
    received.set(e.meta.seq, e.qc.checksum);
  }
  let ok = 0;
  for (const f of logged) {
    const got = received.get(f.seq);
    if (got !== undefined) {
      expect(got, `checksum of frame ${f.seq}`).toBe(f.checksum);
      ok++;
    }
  }
  expect(received.size).toBe(ok); // nothing received that the producer did not write
  expect(ok + (rec.lost.overrun + rec.lost.torn)).toBe(logged.length);
  return { received: ok };
}

describe('a real second process writing the ring', () => {
  it('TypeScript simulator process: every frame received bit-exact or counted as lost', async () => {
    const ring = shmPath('tsprod');
    const log = path.join(tmpDir('tsprod'), 'frames.jsonl');
    files.push(ring, path.dirname(log));
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { enabled: false }, qc: { checksum: true } });
    try {
      const sim = spawnNode([
        BIN,
        'sim',
        '--ring',
        ring,
        '--width',
        '128',
        '--height',
        '96',
        '--z-planes',
        '5',
        '--channels',
        '2',
        '--fps',
        '150',
        '--frames',
        '300',
        '--slots',
        '32',
        '--log-frames',
        log,
      ]);
      expect(await exited(sim), sim.output()).toBe(0);
      const logged = readFrameLog(log);
      expect(logged.length).toBe(300);
      await waitFor(
        () => (rec.events['frame-qc']?.length ?? 0) + (rec.lost.overrun + rec.lost.torn) >= 300,
        15000,
        'all 300 frames accounted for',
      );
      const { received } = checkAccounting(rec, logged);
      expect(received).toBeGreaterThan(250); // at 150 fps a 2-core machine keeps up
    } finally {
      await app.stop();
    }
  });

  it('Python example writer (stdlib mmap) as a separate process: every frame bit-exact or counted', async () => {
    const ring = shmPath('pyprod');
    const log = path.join(tmpDir('pyprod'), 'frames.jsonl');
    files.push(ring, path.dirname(log));
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { enabled: false }, qc: { checksum: true } });
    try {
      const py = spawn('python3', [path.join(ROOT, 'test/fixtures/py_producer.py'), ring, log, '120', '200'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      py.stderr.on('data', (d: Buffer) => {
        out += d.toString();
      });
      expect(await exited(py), out).toBe(0);
      const logged = readFrameLog(log);
      expect(logged.length).toBe(120);
      await waitFor(
        () => (rec.events['frame-qc']?.length ?? 0) + (rec.lost.overrun + rec.lost.torn) >= 120,
        15000,
        'all 120 frames accounted for',
      );
      const { received } = checkAccounting(rec, logged);
      expect(received).toBeGreaterThan(100);
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 1, 5000, 'the producer finishing the acquisition');
    } finally {
      await app.stop();
    }
  });
});
