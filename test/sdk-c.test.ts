/**
 * The one-file C producer (sdk/c/spimring.h) as a camera-SDK loop uses it: compiled here with
 * `-Wall -Wextra -Werror -fsanitize=address,undefined` (and once as C++, and once against
 * libspimring.so from `make -C sdk/c`), it refuses bad arguments with codes that name the field,
 * publishes frames the real sidecar stores bit-exact, and at full speed into a 4-slot ring never
 * gets a torn frame stored: every stored plane is exactly one published frame, and every frame is
 * either stored or counted lost.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, exited, openArray, planeReader, shmPath, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const dir = tmpDir('sdk-c');
const SRC = path.join(ROOT, 'test', 'fixtures', 'c_producer.c');
const FLAGS = ['-std=c99', '-D_POSIX_C_SOURCE=200809L', '-Wall', '-Wextra', '-Werror', '-fsanitize=address,undefined', '-g'];
const exe = { header: path.join(dir, 'producer'), shared: path.join(dir, 'producer-shared') };
const procs: ChildProcess[] = [];
const cleanup: string[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
  for (const f of cleanup.splice(0)) fs.rmSync(f, { recursive: true, force: true });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function build(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT });
  expect(r.status, `${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
}

beforeAll(() => {
  build('gcc', [...FLAGS, '-o', exe.header, SRC]);
  build('g++', ['-std=c++11', '-Wall', '-Wextra', '-Werror', '-x', 'c++', '-o', path.join(dir, 'producer-cpp'), SRC]);
  build('make', ['-s', '-C', 'sdk/c', `O=${dir}`]);
  build('gcc', [...FLAGS, '-DSPIMRING_SHARED', '-o', exe.shared, SRC, `-L${dir}`, '-lspimring', `-Wl,-rpath,${dir}`]);
}, 120_000);

const pattern = (n: number, px: number) => {
  const a = new Uint16Array(px);
  // 1 + (n * 7919 + i * 13) % 65000, in the C program's uint64 arithmetic (exact in doubles here)
  for (let i = 0; i < px; i++) a[i] = 1 + ((n * 7919 + i * 13) % 65000);
  return a;
};

/** Runs the producer against an in-process sidecar; returns the acquisition's summary and its store. */
async function run(bin: string, g: { W: number; H: number; Z: number; C: number; T: number; slots: number; paceUs: number }) {
  const ring = shmPath(`sdk-c-${path.basename(bin)}`);
  const out = path.join(dir, `out-${path.basename(bin)}`);
  cleanup.push(ring, `${ring}.lock`, `${ring}.seen`, out);
  const { app, rec } = await startTestApp({
    source: `shm:${ring}`,
    storage: { out, min_free_bytes: 0, chunk: [g.Z, g.H, g.W], shard: [g.Z, 0, 0] },
  });
  try {
    const p = spawn(bin, [ring, ...[g.W, g.H, g.Z, g.C, g.T, g.slots, g.paceUs].map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
    procs.push(p);
    let output = '';
    for (const s of [p.stdout, p.stderr]) s.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor(
      () => (rec.events.log ?? []).some((e) => e.msg === 'ring attached') || p.exitCode !== null,
      30_000,
      'the sidecar to attach',
    );
    p.stdin.write('go\n');
    expect(await exited(p), output).toBe(0);
    const N = g.T * g.C * g.Z;
    expect(output).toContain(`published ${N}`);
    await waitFor(() => (rec.events['acquisition-finished'] ?? []).length === 1, 60_000, 'the acquisition to finish');
    const summary = (rec.events['acquisition-finished'] ?? [])[0].summary;
    // Every frame stored or counted: received + lost in the ring = published.
    expect(summary.framesReceived + summary.framesOverrun + summary.framesTorn).toBe(N);
    expect(fs.existsSync(ring)).toBe(false); // spimring_close removed it
    return { summary, N };
  } finally {
    await app.stop();
  }
}

/** Every plane of the store is fill (0) or exactly frame n = (t*C + c)*Z + z; returns how many are frames. */
async function checkStore(out: string, g: { W: number; H: number; Z: number; C: number; T: number }): Promise<number> {
  const [store] = storeDirs(out);
  const plane = planeReader(await openArray(store));
  let stored = 0;
  for (let t = 0; t < g.T; t++)
    for (let c = 0; c < g.C; c++)
      for (let z = 0; z < g.Z; z++) {
        const got = await plane(t, c, z);
        if (got.every((v) => v === 0)) continue;
        const n = (t * g.C + c) * g.Z + z;
        expect(
          Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(pattern(n, g.W * g.H).buffer)),
          `t${t} c${c} z${z}`,
        ).toBe(0);
        stored++;
      }
  return stored;
}

describe('sdk/c/spimring.h', () => {
  it('header-only, with sanitizers: refuses bad arguments by code, frames stored bit-exact', async () => {
    const g = { W: 96, H: 64, Z: 4, C: 2, T: 5, slots: 64, paceUs: 500 };
    const { summary, N } = await run(exe.header, g);
    expect(summary.framesReceived).toBe(N);
    expect(summary.framesUnstored).toBe(0);
    expect(await checkStore(path.join(dir, `out-${path.basename(exe.header)}`), g)).toBe(N);
  }, 120_000);

  it('libspimring.so at full speed into 4 slots: no torn frame stored, every frame stored or counted', async () => {
    const g = { W: 256, H: 256, Z: 8, C: 1, T: 250, slots: 4, paceUs: 0 };
    const { summary } = await run(exe.shared, g);
    const stored = await checkStore(path.join(dir, `out-${path.basename(exe.shared)}`), g);
    expect(stored).toBe(summary.framesReceived - summary.framesUnstored);
    expect(stored).toBeGreaterThan(0);
  }, 180_000);
});
