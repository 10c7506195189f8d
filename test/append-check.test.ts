/**
 * `--append` continues a store only with the arrays it already has: each storage parameter that the
 * existing metadata fixes is compared at start, and a mismatch is refused in one line naming the
 * key and both values, exit 2, with every file of the store unchanged. A compatible append still
 * continues the time axis, the first acquisition's data untouched.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, ROOT, exited, openArray, readPlane, shmPath, spawnNode, storeDirs, tmpDir, waitFor } from './helpers.js';
import { appendProblems } from '../src/zarr/append-check.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { recursive: true, force: true });
});

const BASE = ['--set', 'storage.name=fixed', '--set', 'storage.chunk=[4,32,32]', '--set', 'storage.shard=[4,0,0]'];

/** Every file of a directory tree with its SHA-256. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const f = path.join(e.parentPath, e.name);
      out[path.relative(root, f)] = createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    }
  }
  return out;
}

/** Records `timepoints` of a 64² external simulator into OUT with the base settings plus `extra`. */
async function record(out: string, extra: string[], timepoints: number): Promise<void> {
  const ring = shmPath('append-check');
  cleanup.push(ring, `${ring}.lock`);
  const side = spawnNode([BIN, 'run', '--source', `shm:${ring}`, '--out', out, '--port', '0', ...BASE, ...extra]);
  try {
    await waitFor(() => /listening on/.test(side.output()), 20000, `listening: ${side.output()}`);
    const sim = spawnNode([
      BIN,
      'sim',
      '--ring',
      ring,
      '--width',
      '64',
      '--height',
      '64',
      '--z-planes',
      '4',
      '--channels',
      '1',
      '--fps',
      '100',
      '--timepoints',
      String(timepoints),
      '--seed',
      String(timepoints),
    ]);
    expect(await exited(sim), sim.output()).toBe(0);
    await waitFor(() => /acquisition finished/.test(side.output()), 20000, 'the acquisition to finish');
  } finally {
    side.kill('SIGTERM');
    expect(await exited(side), side.output()).toBe(0);
  }
}

function appendRun(out: string, extra: string[]): { code: number | null; lines: string[] } {
  const r = spawnSync(
    process.execPath,
    [BIN, 'run', '--append', '--source', 'shm:/dev/shm/spimstream-test-never-created', '--out', out, '--port', '0', ...BASE, ...extra],
    { encoding: 'utf8', cwd: ROOT, timeout: 20000 },
  );
  return { code: r.status, lines: `${r.stdout}${r.stderr}`.trim().split('\n') };
}

describe('--append compares every storage parameter the store fixes', () => {
  it('the ring-derived ones (dtype, channels, planes, height, width) at acquisition start, naming both values', async () => {
    const out = tmpDir('append-ring');
    cleanup.push(out);
    await record(out, [], 1);
    const [store] = storeDirs(out);
    const have = JSON.parse(fs.readFileSync(path.join(store, '0', 'zarr.json'), 'utf8')) as Record<string, unknown> & { shape: number[] };
    expect(appendProblems(store, [have], 'mean')).toEqual([]);
    expect(appendProblems(store, [{ ...have, shape: [9, ...have.shape.slice(1)] }], 'mean')).toEqual([]); // t may differ
    const dtype = appendProblems(store, [{ ...have, data_type: 'uint8' }], 'mean');
    expect(dtype).toEqual(['the ring\'s dtype differs: the store has "uint16", this run writes "uint8" (data_type)']);
    const planes = appendProblems(store, [{ ...have, shape: [1, 1, 6, 64, 64] }], 'mean');
    expect(planes).toEqual([
      "the ring's geometry (channels, planes, height, width) differs: the store has 4, this run writes 6 (shape[2])",
    ]);
  }, 60_000);

  it('refuses each mismatch at start in one line naming the key and both values; the store is untouched', async () => {
    const out = tmpDir('append-check');
    cleanup.push(out);
    await record(out, [], 2);
    const [store] = storeDirs(out);
    const before = snapshot(store);
    const cases: [string, string[], RegExp][] = [
      ['codec', ['--codec', 'gzip'], /storage\.codec differs: the store has "blosc", this run writes "gzip"/],
      ['clevel', ['--set', 'storage.clevel=5'], /storage\.clevel differs: the store has 1, this run writes 5/],
      ['blocksize', ['--set', 'storage.blocksize=4096'], /storage\.blocksize differs: the store has 8192, this run writes 4096/],
      ['chunk', ['--set', 'storage.chunk=[2,32,32]'], /storage\.chunk differs: the store has 4, this run writes 2/],
      ['shard', ['--set', 'storage.shard=[4,32,32]'], /storage\.shard differs: the store has 64, this run writes 32/],
      [
        'sharding',
        ['--set', 'storage.sharding=false'],
        /storage\.sharding differs: the store has "sharding_indexed", this run writes "bytes"/,
      ],
      [
        'checksum',
        ['--set', 'storage.checksum=false'],
        /storage\.checksum differs: the store has \{"name":"crc32c"\}, this run writes none/,
      ],
      ['levels', ['--set', 'storage.levels=1'], /it has 1 resolution level\(s\), the acquisition writes 2 \(set storage\.levels to 0\)/],
    ];
    for (const [name, extra, re] of cases) {
      const r = appendRun(out, extra);
      expect(r.code, `${name}: ${r.lines.join('\n')}`).toBe(2);
      expect(r.lines.length, `${name}: ${r.lines.join('\n')}`).toBe(1);
      expect(r.lines[0]).toMatch(/^spimstream: cannot append to .*fixed\.ome\.zarr: /);
      expect(r.lines[0], name).toMatch(re);
    }
    const both = spawnSync(process.execPath, [BIN, 'run', '--append', '--overwrite', '--out', out, '--port', '0', ...BASE], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 20000,
    });
    expect(both.status).toBe(2);
    expect(`${both.stdout}${both.stderr}`.trim()).toBe(
      'spimstream: --append and --overwrite contradict each other (continue the store, or replace it): give one',
    );
    expect(snapshot(store)).toEqual(before);
    // The same parameters continue it: t grows, the first timepoints' files are unchanged.
    const first = await openArray(store);
    const t0 = await readPlane(first, 1, 0, 2);
    await record(out, ['--append'], 3);
    const after = snapshot(store);
    for (const [f, h] of Object.entries(before)) if (f.startsWith('0/c/')) expect(after[f], f).toBe(h);
    const arr = await openArray(store);
    expect(arr.shape[0]).toBe(5);
    expect(Buffer.from((await readPlane(arr, 1, 0, 2)).buffer).equals(Buffer.from(t0.buffer))).toBe(true);
    expect(Math.max(...(await readPlane(arr, 4, 0, 3)))).toBeGreaterThan(0);
  }, 120_000);

  it('a pyramid continued with another downsampling is refused too', async () => {
    const out = tmpDir('append-down');
    cleanup.push(out);
    await record(out, ['--set', 'storage.levels=1'], 1);
    const [store] = storeDirs(out);
    const before = snapshot(store);
    const r = appendRun(out, ['--set', 'storage.levels=1', '--set', 'storage.downsample=max']);
    expect(r.code, r.lines.join('\n')).toBe(2);
    expect(r.lines.length).toBe(1);
    expect(r.lines[0]).toMatch(/storage\.downsample differs: the store has "mean", this run writes "max"/);
    expect(snapshot(store)).toEqual(before);
  }, 60_000);
});
