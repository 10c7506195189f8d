/**
 * Offload through rclone to real servers on loopback: a local folder, SFTP (a test-owned Debian
 * sshd on a free port, generated keys, another process) and WebDAV (`rclone serve webdav`, stopped
 * and restarted mid-run). Every test reads the destination store back bit-exact against the
 * producer's frame log and checks the manifest's sizes and SHA-256 against the destination files.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { OffloadStatus } from '../src/offload/offload-status.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { checksumPixels } from '../workers/kernels/stats.js';
import {
  BIN,
  exited,
  freePort,
  mountFs,
  openArray,
  planeReader,
  readFrameLog,
  readPlane,
  shmPath,
  spawnNode,
  startTestApp,
  storeDirs,
  tmpDir,
  unmountFs,
  waitFor,
} from './helpers.js';
import type { PipelineEvents } from '../src/pipeline/events.js';
import { startSftpServer } from '../bench/sftp-server.js';

const cleanup: string[] = [];
const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.end();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

interface Status {
  offload: OffloadStatus;
  disk_full_in_s: number | null;
}

/** Runs one acquisition of N frames through the sidecar with `offload` settings; waits for the offload to complete. */
async function acquire(
  name: string,
  offload: Record<string, unknown>,
  during?: (ev: { verified: number; failures: PipelineEvents['offload-failure'][] }) => Promise<void>,
  N = 160,
  o: { out?: string; fps?: number; storage?: Record<string, unknown> } = {},
) {
  const ring = shmPath(name);
  const dir = tmpDir(name);
  const out = o.out ?? path.join(dir, 'data');
  const log = path.join(dir, 'frames.jsonl');
  cleanup.push(ring, `${ring}.lock`, dir);
  const { app } = await startTestApp({
    source: `shm:${ring}`,
    offload,
    storage: { out, chunk: [8, 128, 128], shard: [8, 256, 256], ...o.storage },
  });
  let status: Status | null = null;
  const seen: { complete: PipelineEvents['offload-complete'][]; failures: PipelineEvents['offload-failure'][]; verified: number } = {
    complete: [],
    failures: [],
    verified: 0,
  };
  app.bus.on('offload-complete', (e) => seen.complete.push(e));
  app.bus.on('offload-failure', (e) => seen.failures.push(e));
  app.bus.on('offload-files', (e) => {
    if (e.result === 'verified') seen.verified += e.files;
  });
  try {
    const sim = spawnNode([
      BIN,
      'sim',
      '--ring',
      ring,
      '--width',
      '256',
      '--height',
      '256',
      '--z-planes',
      '8',
      '--channels',
      '1',
      '--fps',
      String(o.fps ?? 100),
      '--frames',
      String(N),
      '--slots',
      '64',
      '--log-frames',
      log,
    ]);
    procs.push(sim);
    if (during) await during(seen);
    expect(await exited(sim), sim.output()).toBe(0);
    await waitFor(() => seen.complete.length >= 1, 90_000, 'the offload to complete');
    // What the page and /api/status say once the store is complete.
    status = (await (await fetch(`http://127.0.0.1:${app.port}/api/status`)).json()) as Status;
  } finally {
    await app.stop();
  }
  return { out, log, seen, N, status };
}

/** A tmpfs of `mib` MiB mounted at a new directory (the tests run as root); unmounted after the test. */
function tmpfs(name: string, mib: number): string {
  const d = tmpDir(name);
  mountFs(d, { size: `${mib}m` });
  mounts.push(d);
  return d;
}
const mounts: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) {
    unmountFs(m);
    fs.rmSync(m, { recursive: true, force: true });
  }
});

/** The destination store: bit-exact frames, and every manifest entry's size and SHA-256 true there. */
async function checkDestination(destStore: string, log: string): Promise<void> {
  const manifest = JSON.parse(fs.readFileSync(path.join(destStore, 'spimstream-manifest.json'), 'utf8')) as {
    files: { path: string; bytes: number; sha256: string }[];
    complete: boolean;
  };
  expect(manifest.complete).toBe(true);
  expect(manifest.files.length).toBeGreaterThan(3);
  for (const f of manifest.files) {
    const p = path.join(destStore, f.path);
    expect(fs.statSync(p).size, f.path).toBe(f.bytes);
    expect(sha256(p), f.path).toBe(f.sha256);
  }
  const plane = planeReader(await openArray(destStore));
  let n = 0;
  for (const f of readFrameLog(log)) {
    expect(checksumPixels(await plane(f.t, f.c, f.z)), `frame ${f.seq} at the destination`).toBe(f.checksum);
    n++;
  }
  expect(n).toBeGreaterThan(0);
}

/** The journal's verified files (relative to out): 'done' is how compaction keeps a verified file of a store still acquiring. */
function journalVerified(out: string): string[] {
  const f = path.join(out, '.spimstream-offload.jsonl');
  if (!fs.existsSync(f)) return [];
  // Only whole lines: the sidecar may be mid-append (or was killed mid-line), as the journal's own reader allows.
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .slice(0, -1)
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { e: string; f?: string })
    .filter((j) => j.e === 'verified' || j.e === 'done')
    .map((j) => j.f as string);
}

describe('offload through rclone', () => {
  it('delete_local on a local tmpfs far smaller than the acquisition: nothing unstored, the destination is whole', async () => {
    const local = tmpfs('off-small', 12);
    const dest = tmpDir('off-small-dest');
    cleanup.push(dest);
    // ~45 MB of shards through a 12 MiB local disk (disk guard margin 1 MB), at 30 fps (~2 MB/s of
    // shards): a pace a loaded 2-core machine keeps up with while offloading (at 60 fps one with a
    // CPU hog and other tests beside it filled the disk). Whether offload had to run at storing's
    // priority depends on the load: the rule itself is tested with the condition made, test/offload-priority.
    const { out, log } = await acquire('off-small', { destination: dest, delete_local: true }, undefined, 600, {
      out: path.join(local, 'data'),
      fps: 30,
      storage: { min_free_bytes: 1e6 },
    });
    const [store] = storeDirs(out);
    const destStore = path.join(dest, path.basename(store));
    const manifest = JSON.parse(fs.readFileSync(path.join(destStore, 'spimstream-manifest.json'), 'utf8')) as {
      frames: { received: number; unstored: Record<string, number> };
      bytes: { written: number };
    };
    expect(manifest.frames.unstored, 'every received frame stored').toEqual({});
    expect(manifest.frames.received).toBe(600);
    expect(manifest.bytes.written, 'more data than the local disk holds').toBeGreaterThan(2 * 12 * 2 ** 20);
    await checkDestination(destStore, log);
  }, 300_000);

  it('a full destination: failures counted as destination-full, local data kept; once there is room, offload completes by itself', async () => {
    const dest = tmpfs('off-full', 2);
    const { out, log, seen } = await acquire(
      'off-full',
      { destination: dest },
      async (s) => {
        await waitFor(() => s.failures.some((f) => f.reason === 'destination-full'), 120_000, 'a destination-full failure');
        const r = spawnSync('mount', ['-o', 'remount,size=64m', dest], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
      },
      400,
    );
    expect(
      seen.failures.some((f) => f.reason === 'destination-full'),
      JSON.stringify(seen.failures),
    ).toBe(true);
    const [store] = storeDirs(out);
    await checkDestination(store, log);
    await checkDestination(path.join(dest, path.basename(store)), log);
  }, 300_000);

  it('kill -9 mid-transfer, then restart: every file journaled verified is whole at the destination, and the rest follows', async () => {
    const ring = shmPath('off-kill');
    const dir = tmpDir('off-kill');
    const out = path.join(dir, 'data');
    const dest = path.join(dir, 'dest');
    fs.mkdirSync(dest);
    cleanup.push(ring, `${ring}.lock`, dir);
    // The first run offloads at 1 MB/s so the kill lands mid-transfer; the restart needs no limit.
    const run = (bandwidth: string) => {
      const p = spawnNode([
        BIN,
        'run',
        '--source',
        `shm:${ring}`,
        '--out',
        out,
        '--port',
        '0',
        '--json-logs',
        '--set',
        'pipeline.workers=2',
        '--set',
        'storage.chunk=[8,128,128]',
        '--set',
        'storage.shard=[8,256,256]',
        '--set',
        `offload.destination=${dest}`,
        '--set',
        `offload.bandwidth=${bandwidth}`,
        '--set',
        'offload.transfers=1',
      ]);
      procs.push(p);
      return p;
    };
    const first = run('1M');
    const sim = spawnNode([
      BIN,
      'sim',
      '--ring',
      ring,
      '--width',
      '256',
      '--height',
      '256',
      '--z-planes',
      '8',
      '--channels',
      '1',
      '--fps',
      '100',
      '--frames',
      '6000',
      '--slots',
      '64',
    ]);
    procs.push(sim);
    // 1 MB/s against ~5 MB/s of shards: offload is mid-transfer (and the acquisition mid-way) when killed.
    await waitFor(() => journalVerified(out).length >= 2, 120_000, 'two files verified');
    first.kill('SIGKILL');
    await exited(first);
    const verified = journalVerified(out);
    for (const f of verified) {
      expect(
        Buffer.compare(fs.readFileSync(path.join(dest, f)), fs.readFileSync(path.join(out, f))),
        `${f} is journaled verified, so whole`,
      ).toBe(0);
    }
    // The acquisition was still running when the sidecar died; the producer then ends it.
    expect(sim.exitCode, 'the producer was still writing at the kill').toBe(null);
    sim.kill('SIGTERM');
    await exited(sim);
    const [local] = storeDirs(out);
    const localFiles = (fs.readdirSync(local, { recursive: true }) as string[]).filter(
      (f) => fs.statSync(path.join(local, f)).isFile() && !f.includes('.tmp-'),
    );
    expect(localFiles.filter((f) => /^0\/c\//.test(f)).length, 'shards written before the kill').toBeGreaterThan(verified.length);
    const second = run('');
    await waitFor(() => /store .* was interrupted/.test(second.output()), 30_000, 'the interrupted store adopted');
    await waitFor(
      () => localFiles.every((f) => journalVerified(out).includes(`${path.basename(local)}/${f}`)),
      120_000,
      'every local file verified',
    );
    second.kill('SIGTERM');
    expect(await exited(second), second.output()).toBe(0);
    for (const f of localFiles)
      expect(Buffer.compare(fs.readFileSync(path.join(dest, path.basename(local), f)), fs.readFileSync(path.join(local, f))), f).toBe(0);
    // The destination store opens and holds what the interrupted acquisition stored.
    const arr = await openArray(path.join(dest, path.basename(local)));
    const localArr = await openArray(local);
    for (let t = 0; t < Math.min(arr.shape[0], 3); t++) {
      for (let z = 0; z < 8; z++)
        expect(checksumPixels(await readPlane(arr, t, 0, z))).toBe(checksumPixels(await readPlane(localArr, t, 0, z)));
    }
    expect(
      fs.existsSync(path.join(dest, path.basename(local), 'spimstream-manifest.json')),
      'no manifest for an interrupted acquisition',
    ).toBe(false);
  }, 300_000);

  it('to a local folder: every file copied bit-exact, metadata after shards, manifest last, journal complete', async () => {
    const dest = tmpDir('offload-dest');
    cleanup.push(dest);
    const hookOut = path.join(dest, '..', `${path.basename(dest)}-hook.txt`);
    cleanup.push(hookOut);
    const hook = [
      'sh',
      '-c',
      `printf '%s\\n%s\\n%s\\n' "$SPIMSTREAM_STORE" "$SPIMSTREAM_MANIFEST" "$SPIMSTREAM_DESTINATION" > ${hookOut}; echo hook-ran`,
    ];
    const { out, log, status } = await acquire('off-local', { destination: dest, on_complete: hook });
    const [local] = storeDirs(out);
    // The page's offload state: this acquisition complete, every file verified, nothing left.
    const st = status?.offload;
    expect(st?.stores[0], JSON.stringify(st)).toMatchObject({ store: path.basename(local), state: 'complete', etaSeconds: 0 });
    expect(st?.stores[0].verifiedFiles).toBe(st?.stores[0].files);
    expect(st?.stores[0].verifiedBytes).toBe(st?.stores[0].bytes);
    expect(st?.files).toBe(0);
    expect(st?.rateBps, 'bytes verified in the last minute').toBeGreaterThan(0);
    const destStore = path.join(dest, path.basename(local));
    await checkDestination(destStore, log);
    // Nothing deleted locally without delete_local; every local file is at the destination, identical.
    for (const f of fs.readdirSync(local, { recursive: true }) as string[]) {
      const p = path.join(local, f);
      if (fs.statSync(p).isFile()) expect(Buffer.compare(fs.readFileSync(p), fs.readFileSync(path.join(destStore, f))), f).toBe(0);
    }
    const journal = fs
      .readFileSync(path.join(out, '.spimstream-offload.jsonl'), 'utf8')
      .split('\n')
      .slice(0, -1)
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { e: string; f?: string });
    const order = journal.filter((j) => j.e === 'verified').map((j) => j.f as string);
    const lastShard = Math.max(...order.map((f, i) => (/\/c\//.test(f) ? i : -1)));
    const firstMeta = order.findIndex((f) => f.endsWith('zarr.json'));
    expect(firstMeta, 'metadata verified after every shard').toBeGreaterThan(lastShard);
    expect(order.at(-1)).toMatch(/spimstream-manifest\.json$/);
    // on_complete ran after the manifest was verified there, with the three variables.
    await waitFor(() => fs.existsSync(hookOut) && fs.readFileSync(hookOut, 'utf8').split('\n').length >= 3, 20_000, 'the on_complete hook');
    expect(fs.readFileSync(hookOut, 'utf8').split('\n').slice(0, 3)).toEqual([
      local,
      path.join(local, 'spimstream-manifest.json'),
      destStore,
    ]);
  });

  it('to SFTP (Debian openssh-server on loopback) with delete_local: local shards go once verified, the destination is whole', async () => {
    const dir = tmpDir('sftp');
    cleanup.push(dir);
    const server = await startSftpServer(dir, await freePort());
    procs.push(server.proc);
    const conf = server.rcloneConfig;
    const destDir = path.join(dir, 'archive');
    fs.mkdirSync(destDir);
    const { out, log } = await acquire('off-sftp', { destination: `scope-archive:${destDir}`, rclone_config: conf, delete_local: true });
    const [local] = storeDirs(out);
    // Locally only the manifest and the QC report are left: every data and metadata file went.
    const left = (fs.readdirSync(local, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(local, f)).isFile()).sort();
    expect(left).toEqual(['qc-report.html', 'spimstream-manifest.json']);
    await checkDestination(path.join(destDir, path.basename(local)), log);
  });

  it('to WebDAV (rclone serve webdav) stopped and restarted mid-run: failures counted, local data kept, resumes by itself, verified by reading back', async () => {
    const dir = tmpDir('webdav');
    cleanup.push(dir);
    const port = await freePort();
    const destDir = path.join(dir, 'dav');
    fs.mkdirSync(destDir);
    const serve = () => {
      const p = spawn('rclone', ['serve', 'webdav', destDir, '--addr', `127.0.0.1:${port}`], { stdio: 'ignore' });
      procs.push(p);
      return p;
    };
    let server = serve();
    await waitFor(() => listening(port), 15_000, 'webdav listening');
    const { out, log, seen } = await acquire(
      'off-dav',
      { destination: `:webdav,url='http://127.0.0.1:${port}':`, retries: 1 },
      async (s) => {
        await waitFor(() => s.verified > 0, 60_000, 'a first verified file');
        server.kill('SIGKILL');
        await exited(server);
        await waitFor(() => s.failures.length > 0, 120_000, 'a failure while the server is down (rclone gives up)');
        server = serve();
      },
      800,
    ); // 8 s of frames: shards are still being written when the server goes down
    expect(seen.failures.length).toBeGreaterThan(0);
    expect(
      seen.failures.every((f) => ['unreachable', 'other', 'verify'].includes(f.reason)),
      JSON.stringify(seen.failures),
    ).toBe(true);
    const [local] = storeDirs(out);
    // Without delete_local the local store is whole too.
    await checkDestination(local, log);
    await checkDestination(path.join(destDir, path.basename(local)), log);
  }, 300_000);
});
