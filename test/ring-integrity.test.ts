/**
 * Integrity against a producer written only from docs/ring-protocol.md (test/fixtures/raw_ring_writer.py):
 * a ring truncated in place while attached never yields a torn frame in the store.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, exited, oneLine, openArray, readPlane, shmPath, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const files: string[] = [];
afterEach(() => {
  for (const f of files.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

const W = 512,
  H = 256,
  Z = 10;
const pattern = (k: number): Uint16Array => {
  const a = new Uint16Array(W * H);
  for (let i = 0; i < a.length; i++) a[i] = 1 + ((k * 7919 + i * 13) % 65000);
  return a;
};

/**
 * Runs the producer. With `attached`, it creates the ring, waits until `attached()` holds (the
 * sidecar has mapped it), then publishes: the truncation must happen while the consumer reads.
 */
async function produce(
  ring: string,
  n: number,
  mode: 'truncate' | 'finish',
  env: Record<string, string> = {},
  attached?: () => boolean,
): Promise<number | null> {
  const py = spawn(
    'python3',
    [path.join(ROOT, 'test/fixtures/raw_ring_writer.py'), ring, String(W), String(H), String(Z), String(n), mode],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env, ...(attached ? { GO_ON_STDIN: '1', START_DELAY: '0' } : {}) } },
  );
  let err = '';
  py.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const done = exited(py);
  if (attached) {
    await waitFor(attached, 30000, 'the sidecar attached to the new ring');
    py.stdin.end('go\n');
  }
  const code = await done;
  expect(code, err).toBe(0);
  return code;
}

/** Reads every plane back: each is the producer's exact frame or, if not stored, the fill value. Returns planes stored. */
async function checkStore(out: string, patterns: Uint16Array[]): Promise<{ whole: number; missing: number[] }> {
  const [dir] = storeDirs(out);
  const arr = await openArray(dir);
  let whole = 0;
  const missing: number[] = [];
  for (let t = 0; t < arr.shape[0]; t++) {
    for (let z = 0; z < Z; z++) {
      const n = t * Z + z;
      const plane = (await readPlane(arr, t, 0, z)) as Uint16Array;
      if (plane.every((v) => v === 0)) {
        missing.push(n);
        continue;
      }
      const want = patterns[n % 8];
      let bad = 0;
      for (let i = 0; i < want.length; i++) if (plane[i] !== want[i]) bad++;
      expect(bad, `frame ${n} (t=${t}, z=${z}) stored with ${bad} wrong voxels`).toBe(0);
      whole++;
    }
  }
  return { whole, missing };
}

describe('acquisition start on a fresh ring', () => {
  it('the producer starts at once: every frame of the acquisition is stored, the summary counts them all', async () => {
    const patterns = Array.from({ length: 8 }, (_, k) => pattern(k));
    for (let run = 0; run < 6; run++) {
      const ring = shmPath(`fresh${run}`);
      const out = tmpDir(`fresh${run}`);
      files.push(ring, `${ring}.tmp`, out);
      const N = 60;
      const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { out, chunk: [5, 256, 256], shard: [10, 256, 512] } });
      try {
        await produce(ring, N, 'finish', { START_DELAY: String(run % 3 === 0 ? 0 : 0.002 * run), SLOTS: '64' });
        await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 20000, 'the acquisition finished');
      } finally {
        await app.stop();
      }
      expect(rec.events['acquisition-finished']).toHaveLength(1);
      const s = rec.events['acquisition-finished']![0].summary;
      expect(s.framesReceived + s.framesOverrun + s.framesTorn, JSON.stringify(s)).toBe(N);
      expect(s.framesUnstored, JSON.stringify(rec.events['frames-unstored'])).toBe(0);
      const { whole, missing } = await checkStore(out, patterns);
      expect(whole, `run ${run}: frames not in the store: ${missing.join()}`).toBe(s.framesReceived);
    }
  });
});

/**
 * A producer that cuts the ring while the sidecar is attached (env: TRUNCATE_DELAY, SLOTS). Every
 * stored plane must be a whole frame, every published frame read or counted, and the sidecar must
 * detach with the one-line error and finalize the acquisition. Returns frames stored whole.
 */
async function truncatedRun(name: string, N: number, env: Record<string, string>): Promise<number> {
  const patterns = Array.from({ length: 8 }, (_, k) => pattern(k));
  const ring = shmPath(name);
  const out = tmpDir(name);
  files.push(ring, `${ring}.tmp`, `${ring}.lock`, out);
  const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { out, chunk: [5, 256, 256], shard: [10, 256, 512] } });
  let detached = '';
  app.bus.on('log', (e) => {
    if (/^bad ring .*: file size: .*shorter than the \d+ bytes attached \(truncated or recreated while attached\)/.test(e.msg))
      detached = e.msg;
  });
  try {
    await produce(ring, N, 'truncate', env, () => app.pipeline.status().attached);
    await waitFor(() => detached !== '', 20000, 'the one-line ring error after the truncation');
    oneLine(detached);
    await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 1, 20000, 'the acquisition finalized on detach');
  } finally {
    await app.stop();
  }
  const s = rec.events['acquisition-finished']![0].summary;
  // Every published frame is read, or counted lost with its reason; none twice.
  expect(s.framesReceived + s.framesOverrun + s.framesTorn, JSON.stringify(s)).toBe(N);
  const { whole } = await checkStore(out, patterns);
  expect(whole).toBe(s.framesReceived - s.framesUnstored);
  return whole;
}

describe('ring truncated while attached', () => {
  it('every stored plane is a whole frame, the torn one is counted, the sidecar detaches with one line', async () => {
    // Cut right after the last publish, while the consumer is still copying the newest slots.
    for (let run = 0; run < 3; run++) expect(await truncatedRun(`trunc${run}`, 200 + run * 37, {})).toBeGreaterThan(0);
  });

  it('a ring cut after the consumer caught up is still noticed: the same one line, the acquisition finalized', async () => {
    expect(await truncatedRun('truncidle', 40, { TRUNCATE_DELAY: '1.5', SLOTS: '64' })).toBeGreaterThan(0);
  });
});

describe('ring recreated at its path while attached (a producer that restarted)', () => {
  it('is detected within a second, the sidecar attaches to the new ring by itself, and its acquisition is stored whole', async () => {
    const patterns = Array.from({ length: 8 }, (_, k) => pattern(k));
    const ring = shmPath('recreate');
    const out = tmpDir('recreate');
    files.push(ring, `${ring}.tmp`, `${ring}.lock`, out);
    const N = 30;
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { out, chunk: [5, 256, 256], shard: [10, 256, 512] } });
    let attachedCount = 0;
    let recreated = '';
    app.bus.on('log', (e) => {
      if (e.msg === 'ring attached') attachedCount++;
      if (/^bad ring .*: file: recreated while attached/.test(e.msg)) recreated = e.msg;
    });
    try {
      await produce(ring, N, 'finish', { SLOTS: '64' }, () => attachedCount >= 1);
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 1, 20000, 'the first acquisition finished');
      // Store names carry the start time to the second: let the clock move on before the second one.
      const firstSecond = Math.floor(Date.now() / 1000);
      await waitFor(() => Math.floor(Date.now() / 1000) > firstSecond, 5000, 'the next second');
      // The same producer again: a new ring file renamed over the path, then the same acquisition id.
      await produce(ring, N, 'finish', { SLOTS: '64' }, () => attachedCount >= 2);
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 2, 20000, 'the acquisition on the new ring finished');
    } finally {
      await app.stop();
    }
    oneLine(recreated);
    const dirs = storeDirs(out);
    expect(dirs).toHaveLength(2);
    const s = rec.events['acquisition-finished']![1].summary;
    expect(s.framesReceived + s.framesOverrun + s.framesTorn, JSON.stringify(s)).toBe(N);
    const arr = await openArray(dirs[1]);
    let whole = 0;
    for (let n = 0; n < N; n++) {
      const plane = (await readPlane(arr, Math.floor(n / Z), 0, n % Z)) as Uint16Array;
      if (plane.every((v) => v === 0)) continue;
      const want = patterns[n % 8];
      let bad = 0;
      for (let i = 0; i < want.length; i++) if (plane[i] !== want[i]) bad++;
      expect(bad, `frame ${n} of the new ring`).toBe(0);
      whole++;
    }
    expect(whole).toBe(s.framesReceived - s.framesUnstored);
    expect(whole).toBeGreaterThan(0);
  });
});
