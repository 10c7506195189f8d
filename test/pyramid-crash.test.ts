/**
 * kill -9 with the live pyramid on: every level's shard under its final name decodes, level 0's
 * planes are what the producer wrote, and each lower level's final shard equals the reference
 * downsampling of its timepoint's level 0, bit-exact. No half-file under a final name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as zarr from 'zarrita';
import { FileSystemStore } from '@zarrita/storage';
import { checksumPixels } from '../workers/kernels/stats.js';
import { BIN, exited, readFrameLog, replayableDelay, shmPath, sleep, spawnNode, storeDirs, tmpDir, waitFor } from './helpers.js';
import { downsample, type Vol } from './pyramid-reference.js';

const cleanup: string[] = [];
const procs: ReturnType<typeof spawnNode>[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

const W = 256;
const H = 128;
const Z = 8;
const LEVELS = 2;

/** Final (not temp) files of level k's chunk folder, as [t, c] of their shard. */
function finals(dir: string, k: number): [number, number][] {
  const c = path.join(dir, String(k), 'c');
  if (!fs.existsSync(c)) return [];
  const out: [number, number][] = [];
  for (const f of fs.readdirSync(c, { recursive: true }) as string[]) {
    if (path.basename(f).startsWith('.')) continue;
    try {
      if (!fs.statSync(path.join(c, f)).isFile()) continue;
    } catch {
      continue;
    } // renamed meanwhile
    const [t, ch] = f.split(path.sep).map(Number);
    out.push([t, ch]);
  }
  return out;
}

async function readTc(dir: string, k: number, t: number, c: number): Promise<Vol> {
  const arr = await zarr.open.v3(zarr.root(new FileSystemStore(dir)).resolve(String(k)), { kind: 'array' });
  const r = await zarr.get(arr, [t, c, null, null, null]);
  return { shape: [1, 1, ...r.shape], data: Float64Array.from(r.data as Uint16Array) };
}

describe('live pyramid after kill -9', () => {
  it('every final shard of every level decodes; lower levels equal the reference of their level 0', async () => {
    const ring = shmPath('pyr-kill9');
    const out = tmpDir('pyr-kill9');
    const log = path.join(out, 'frames.jsonl');
    cleanup.push(ring, `${ring}.lock`, out);
    const data = path.join(out, 'data');
    const sidecar = spawnNode([
      BIN,
      'run',
      '--source',
      `shm:${ring}`,
      '--out',
      data,
      '--port',
      '0',
      '--json-logs',
      '--set',
      'pipeline.workers=2',
      '--set',
      `storage.levels=${LEVELS}`,
      '--set',
      'storage.downsample=mean',
    ]);
    procs.push(sidecar);
    const sim = spawnNode([
      BIN,
      'sim',
      '--ring',
      ring,
      '--width',
      String(W),
      '--height',
      String(H),
      '--z-planes',
      String(Z),
      '--channels',
      '2',
      '--fps',
      '120',
      '--frames',
      '3000',
      '--slots',
      '64',
      '--log-frames',
      log,
    ]);
    procs.push(sim);
    // A loaded machine may take a while for the first shards: wait for it, then kill at a random moment.
    const dirOf = () => storeDirs(data)[0] ?? '';
    const everyLevel = () => Array.from({ length: LEVELS + 1 }, (_, k) => k).every((k) => finals(dirOf(), k).length > 0);
    await waitFor(() => dirOf() !== '' && everyLevel(), 60000, 'a first shard of every level under its final name');
    await sleep(replayableDelay('kill -9 after a first shard of every level', 1500));
    sidecar.kill('SIGKILL');
    await exited(sidecar);
    sim.kill('SIGTERM');
    await exited(sim);
    const dir = dirOf();
    const byTcz = new Map(readFrameLog(log).map((f) => [`${f.t}/${f.c}/${f.z}`, f.checksum]));
    // Level 0: each final shard's planes are the producer's (a plane of fill value was not stored).
    const complete = new Set<string>();
    for (const [t, c] of finals(dir, 0)) {
      const v = await readTc(dir, 0, t, c);
      let planes = 0;
      for (let z = 0; z < Z; z++) {
        const px = Uint16Array.from(v.data.subarray(z * W * H, (z + 1) * W * H));
        if (px.every((x) => x === 0)) continue;
        expect(checksumPixels(px), `level 0 t=${t} c=${c} z=${z}`).toBe(byTcz.get(`${t}/${c}/${z}`));
        planes++;
      }
      if (planes === Z) complete.add(`${t}/${c}`);
    }
    expect(complete.size).toBeGreaterThan(0);
    // Lower levels: decodable wherever final; where level 0 is complete, equal to its reference.
    let verified = 0;
    for (let k = 1; k <= LEVELS; k++) {
      const files = finals(dir, k);
      expect(files.length, `level ${k} has final shards`).toBeGreaterThan(0);
      for (const [t, c] of files) {
        const got = await readTc(dir, k, t, c);
        if (!complete.has(`${t}/${c}`)) continue;
        let want = await readTc(dir, 0, t, c);
        for (let j = 0; j < k; j++) want = downsample(want, 'mean');
        expect(got.shape).toEqual(want.shape);
        const diff = got.data.findIndex((x, i) => x !== want.data[i]);
        expect(diff, `level ${k} t=${t} c=${c}: first differing voxel`).toBe(-1);
        verified++;
      }
    }
    expect(verified).toBeGreaterThanOrEqual(LEVELS);
  });
});
