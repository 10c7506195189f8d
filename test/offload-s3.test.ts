/**
 * Offload to an S3 object store that runs here: OpenStack Swift with s3api (bench/swift-aio.ts),
 * through rclone's s3 backend and a connection string whose key never reaches a log or manifest.
 * The bucket does not exist before the first run (rclone creates it). Swift's own API through
 * rclone's swift backend is the same code path's second check.
 * AWS_CA_BUNDLE is set for the sidecar as on these machines (rclone's s3 backend fails on it
 * unless spimstream hands it over as --ca-cert); the test sets it itself, whatever the caller has.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineEvents } from '../src/pipeline/events.js';
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
import { logMark, logSince } from './test-log.js';
import { type Swift, startSwift } from '../bench/swift-aio.js';

const SECRET = 'testing';
let swift: Swift;
const savedBundle = process.env.AWS_CA_BUNDLE;
const dirs: string[] = [];
beforeAll(async () => {
  process.env.AWS_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
  swift = await startSwift();
});
afterAll(async () => {
  if (savedBundle === undefined) delete process.env.AWS_CA_BUNDLE;
  else process.env.AWS_CA_BUNDLE = savedBundle;
  await swift?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const s3 = (key: string) => `:s3,provider=Other,access_key_id='test:tester',secret_access_key=${key},endpoint='${swift.endpoint}':`;

/** rclone with a clean environment, for the test's own look at the bucket (async: the event loop runs on). */
async function rclone(args: string[]): Promise<string> {
  const { AWS_CA_BUNDLE: _, ...env } = process.env;
  const p = spawn('rclone', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  p.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  expect(await exited(p), err).toBe(0);
  return out;
}

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

async function acquire(name: string, destination: string, during?: (seen: Seen) => Promise<void>, frames = 400) {
  const ring = shmPath(name);
  const dir = tmpDir(name);
  dirs.push(dir, ring, `${ring}.lock`);
  const out = path.join(dir, 'data');
  const log = path.join(dir, 'frames.jsonl');
  const mark = logMark();
  const { app } = await startTestApp({
    source: `shm:${ring}`,
    log: { level: 'info' },
    offload: { destination, retries: 1 },
    storage: { out, chunk: [8, 128, 128], shard: [8, 256, 256] },
  });
  const seen: Seen = { complete: [], failures: [], verified: 0 };
  app.bus.on('offload-complete', (e) => seen.complete.push(e));
  app.bus.on('offload-failure', (e) => seen.failures.push(e));
  app.bus.on('offload-files', (e) => {
    if (e.result === 'verified') seen.verified += e.files;
  });
  try {
    const sim = startSim(ring, frames, log);
    if (during) await during(seen);
    expect(await exited(sim), sim.output()).toBe(0);
    await waitFor(() => seen.complete.length >= 1, 120_000, `the offload to ${destination.replace(SECRET, '***')} to complete`);
  } finally {
    await app.stop();
  }
  // What the sidecar wrote (masked), not the raw events.
  return { out, log, seen, logged: logSince(mark), dir };
}

/** The simulator writing `frames` 256² frames (stacks of 8) at 100 fps, logging each to `log` if given. */
function startSim(ring: string, frames: number, log?: string) {
  const geometry = ['--width', '256', '--height', '256', '--z-planes', '8', '--channels', '1', '--fps', '100', '--slots', '64'];
  return spawnNode([BIN, 'sim', '--ring', ring, ...geometry, '--frames', String(frames), ...(log ? ['--log-frames', log] : [])]);
}

interface Seen {
  complete: PipelineEvents['offload-complete'][];
  failures: PipelineEvents['offload-failure'][];
  verified: number;
}

/** Downloads the store from the bucket and checks it: manifest sizes and SHA-256, every frame bit-exact. */
async function checkBucket(remote: string, store: string, dir: string, log: string, n = 400): Promise<void> {
  const copy = path.join(dir, 'from-bucket');
  await rclone(['copy', `${remote}${store}`, copy]);
  const manifest = JSON.parse(fs.readFileSync(path.join(copy, 'spimstream-manifest.json'), 'utf8')) as {
    files: { path: string; bytes: number; sha256: string }[];
  };
  expect(manifest.files.length).toBeGreaterThan(3);
  for (const f of manifest.files) {
    expect(fs.statSync(path.join(copy, f.path)).size, f.path).toBe(f.bytes);
    expect(sha256(path.join(copy, f.path)), f.path).toBe(f.sha256);
  }
  const plane = planeReader(await openArray(copy));
  const frames = readFrameLog(log);
  for (const f of frames) expect(checksumPixels(await plane(f.t, f.c, f.z)), `frame ${f.seq} in the bucket`).toBe(f.checksum);
  expect(frames.length).toBe(n);
}

describe('offload to S3 (Swift s3api)', () => {
  it('shards while acquiring, the manifest last, verified by the server MD5; the key in no log or manifest', async () => {
    const remote = `${s3(SECRET)}spimstream/scope1/`;
    const { out, log, seen, logged, dir } = await acquire('off-s3', remote);
    expect(seen.failures).toEqual([]);
    const [local] = storeDirs(out);
    const store = path.basename(local);
    await checkBucket(remote, store, dir, log);
    // Verified by hash (the objects' ETags), not by reading back.
    expect(logged).toMatch(/offload verifies with md5 hashes/);
    expect(logged).toContain("secret_access_key=***,endpoint='http://127.0.0.1:");
    expect(logged).not.toContain(`secret_access_key=${SECRET}`);
    expect(fs.readFileSync(path.join(local, 'spimstream-manifest.json'), 'utf8')).not.toContain(`secret_access_key=${SECRET}`);
  }, 180_000);

  it("Swift's own API (rclone's swift backend, tempauth): the same path, verified by MD5, bit-exact", async () => {
    const remote = `:swift,user='test:tester',key=${SECRET},auth='${swift.endpoint}/auth/v1.0':spimstream-swift/scope3/`;
    const { out, log, seen, logged, dir } = await acquire('off-swift', remote);
    expect(seen.failures).toEqual([]);
    expect(logged).toMatch(/offload verifies with md5 hashes/);
    expect(logged).not.toContain(`key=${SECRET}`);
    await checkBucket(remote, path.basename(storeDirs(out)[0]), dir, log);
  }, 180_000);

  it('the proxy killed mid-upload and restarted: failures counted, local data kept, completes bit-exact', async () => {
    const remote = `${s3(SECRET)}spimstream/scope2/`;
    const { out, log, seen, dir } = await acquire(
      'off-s3-kill',
      remote,
      async (s) => {
        await waitFor(() => s.verified > 0, 60_000, 'a first verified file');
        await swift.killProxy();
        await waitFor(() => s.failures.length > 0, 120_000, 'a failure while the proxy is down');
        await swift.restartProxy();
      },
      80, // few files in flight: rclone's s3 pacer fails a dead endpoint's files 2 s apart
    );
    expect(
      seen.failures.every((f) => f.reason === 'unreachable'),
      JSON.stringify(seen.failures),
    ).toBe(true);
    await checkBucket(remote, path.basename(storeDirs(out)[0]), dir, log, 80);
  }, 240_000);

  it('wrong credentials: refused, said in one line without the key; nothing verified', async () => {
    const ring = shmPath('off-s3-bad');
    const dir = tmpDir('off-s3-bad');
    dirs.push(dir, ring, `${ring}.lock`);
    const mark = logMark();
    const { app } = await startTestApp({
      source: `shm:${ring}`,
      offload: { destination: `${s3('not-the-key')}spimstream/bad/`, retries: 1 },
      storage: { out: path.join(dir, 'data'), chunk: [8, 128, 128], shard: [8, 256, 256] },
    });
    const failures: PipelineEvents['offload-failure'][] = [];
    app.bus.on('offload-failure', (e) => failures.push(e));
    try {
      const sim = startSim(ring, 80);
      await waitFor(() => failures.length > 0, 60_000, 'the refused offload');
      await exited(sim);
    } finally {
      await app.stop();
    }
    expect(failures[0].reason).toBe('refused');
    const written = logSince(mark);
    const lines = written.split('\n').filter((m) => m.includes('offload to'));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/secret_access_key=\*\*\*.* failed \(refused\): .*SignatureDoesNotMatch/);
    expect(written).not.toContain('not-the-key');
  }, 120_000);
});
