/**
 * Shard appends through O_DIRECT (src/zarr/appender.ts): every byte read back equal at lengths
 * around the 4 KiB block and the 8 MiB staging buffer, appended in odd pieces; the page cache really
 * bypassed (fincore, util-linux, counts the file's resident pages); a file system that refuses
 * O_DIRECT (ramfs) gets buffered writes, said once, with the same bytes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DIRECT_ALIGN,
  DirectAppender,
  openAppender,
  pageAlignedBuffer,
  paddedInPlace,
  WriteMode,
  WRITE_BYTES,
} from '../src/zarr/appender.js';
import { ShardFile } from '../src/zarr/shard-file.js';
import { createHash } from 'node:crypto';
import { checksumPixels } from '../workers/kernels/stats.js';
import {
  BIN,
  exited,
  mountFs,
  openArray,
  readFrameLog,
  readPlane,
  shmPath,
  spawnNode,
  startTestApp,
  storeDirs,
  tmpDir,
  unmountFs,
} from './helpers.js';

const dirs: string[] = [];
const mounts: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) unmountFs(m);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Appends `data` in pieces of the given sizes (cycled), finishes, closes. */
async function write(file: string, mode: WriteMode, data: Uint8Array, pieces: number[]): Promise<void> {
  const a = await openAppender(file, mode);
  try {
    for (let o = 0, k = 0; o < data.length; k++) {
      const n = Math.min(pieces[k % pieces.length], data.length - o);
      // Several parts per call, as a z-block's chunks come.
      await a.append([data.subarray(o, o + Math.floor(n / 2)), data.subarray(o + Math.floor(n / 2), o + n)]);
      o += n;
    }
    await a.finish();
  } finally {
    await a.close();
  }
}

/** The (offset, nbytes) pairs of a shard's index (n inner chunks at its end); null for an empty chunk. */
function shardIndex(file: Buffer, n: number): ({ offset: number; nbytes: number } | null)[] {
  const at = file.length - 16 * n - 4;
  const out: ({ offset: number; nbytes: number } | null)[] = [];
  for (let i = 0; i < n; i++) {
    const offset = file.readBigUInt64LE(at + 16 * i);
    out.push(offset === 2n ** 64n - 1n ? null : { offset: Number(offset), nbytes: Number(file.readBigUInt64LE(at + 16 * i + 8)) });
  }
  return out;
}

/** Resident pages of `file` in the page cache (fincore), or null where fincore cannot tell. */
function residentPages(file: string): number {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'PAGES', file], { encoding: 'utf8' });
  expect(r.status, `fincore: ${r.stderr}`).toBe(0);
  return Number(r.stdout.trim());
}

describe('shard appends through O_DIRECT', () => {
  it('reads back bit-exact at every awkward length, and leaves nothing in the page cache', async () => {
    const dir = tmpDir('direct');
    dirs.push(dir);
    const said: string[] = [];
    const mode = new WriteMode(true, (_d, m) => said.push(m));
    const lengths = [
      0,
      1,
      DIRECT_ALIGN - 1,
      DIRECT_ALIGN,
      DIRECT_ALIGN + 1,
      WRITE_BYTES - 1,
      WRITE_BYTES,
      WRITE_BYTES + 1,
      3 * WRITE_BYTES + 12_345,
    ];
    for (const len of lengths) {
      const data = new Uint8Array(randomBytes(len));
      const file = path.join(dir, `f${len}`);
      await write(file, mode, data, [1_400_001, 7, 4096, 3 * 2 ** 20 + 5]);
      expect(mode.direct, `O_DIRECT refused on ${os.tmpdir()}: ${said.join('; ')}`).toBe(true);
      const back = fs.readFileSync(file);
      expect(back.length, `length ${len}`).toBe(len);
      expect(Buffer.compare(back, data), `bytes of the ${len}-byte file`).toBe(0);
      fs.rmSync(file);
    }
    expect(said).toEqual(['storage writes bypass the page cache (O_DIRECT, 4 KiB-aligned)']);
    // The page cache: a file written through O_DIRECT has no resident page; one written buffered has.
    const big = new Uint8Array(randomBytes(2 * WRITE_BYTES + 100));
    await write(path.join(dir, 'direct'), new WriteMode(true), big, [WRITE_BYTES]);
    await write(path.join(dir, 'buffered'), new WriteMode(false), big, [WRITE_BYTES]);
    expect(residentPages(path.join(dir, 'direct')), 'pages cached after O_DIRECT').toBeLessThanOrEqual(1);
    expect(residentPages(path.join(dir, 'buffered')), 'pages cached after buffered writes').toBeGreaterThan(1000);
    expect(Buffer.compare(fs.readFileSync(path.join(dir, 'direct')), big)).toBe(0);
  });

  it('the sidecar writes its shards through O_DIRECT (said in the log, no page cached) and every frame reads back bit-exact', async () => {
    const ring = shmPath('direct-sidecar');
    const dir = tmpDir('direct-sidecar');
    dirs.push(dir, ring, `${ring}.lock`);
    const out = path.join(dir, 'data');
    const log = path.join(dir, 'frames.jsonl');
    const { app } = await startTestApp({ source: `shm:${ring}`, storage: { out, chunk: [8, 128, 128], shard: [16, 256, 256] } });
    const said: string[] = [];
    app.bus.on('log', (e) => {
      if (/^storage writes/.test(e.msg)) said.push(e.msg);
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
        '200',
        '--z-planes',
        '16',
        '--channels',
        '2',
        '--fps',
        '200',
        '--frames',
        '96',
        '--log-frames',
        log,
      ]);
      expect(await exited(sim), sim.output()).toBe(0);
    } finally {
      await app.stop();
    }
    expect(said).toEqual(['storage writes bypass the page cache (O_DIRECT, 4 KiB-aligned)']);
    const [store] = storeDirs(out);
    const shards = (fs.readdirSync(path.join(store, '0', 'c'), { recursive: true }) as string[])
      .map((f) => path.join(store, '0', 'c', f))
      .filter((f) => fs.statSync(f).isFile());
    expect(shards.length).toBeGreaterThan(0);
    // Before anything reads them: at most the last, partly written block of each shard may be cached.
    for (const f of shards) expect(residentPages(f), f).toBeLessThanOrEqual(1);
    // Chunks went from the output slab to disk where they lay: each starts on a block boundary.
    let chunks = 0;
    for (const f of shards)
      for (const e of shardIndex(fs.readFileSync(f), 8)) {
        if (!e) continue;
        chunks++;
        expect(e.offset % DIRECT_ALIGN, `${f}: chunk at ${e.offset}`).toBe(0);
      }
    expect(chunks).toBeGreaterThan(0);
    const arr = await openArray(store);
    let n = 0;
    for (const f of readFrameLog(log)) {
      expect(checksumPixels(await readPlane(arr, f.t, f.c, f.z)), `frame ${f.seq}`).toBe(f.checksum);
      n++;
    }
    expect(n).toBe(96);
  });

  it('chunks in page-aligned memory go to disk from where they lie, on block boundaries, and read back bit-exact', async () => {
    const dir = tmpDir('direct-inplace');
    dirs.push(dir);
    const mode = new WriteMode(true);
    const slot = 3 * DIRECT_ALIGN;
    const slab = pageAlignedBuffer(6 * slot);
    if (!slab) throw new Error('no page-aligned memory in this runtime');
    // Chunks in slots (lengths around a block), and two ordinary arrays between them.
    const lengths = [5000, DIRECT_ALIGN, 1, 2 * DIRECT_ALIGN + 17, slot, 777];
    const chunks = lengths.map((len, k) => {
      const v = new Uint8Array(slab, k * slot, len);
      v.set(randomBytes(len));
      new Uint8Array(slab, k * slot + len, slot - len).fill(0xee); // stale bytes from an earlier chunk
      return v;
    });
    const loose = [new Uint8Array(randomBytes(123)), new Uint8Array(randomBytes(DIRECT_ALIGN + 9))];
    const order: Uint8Array[] = [chunks[0], loose[0], chunks[1], chunks[2], chunks[3], chunks[4], chunks[5], loose[1]];
    const expected = order.map((c) => Buffer.from(c));
    const file = path.join(dir, 'shard');
    const returned: Uint8Array[] = [];
    const shard = new ShardFile(
      file,
      `${file}.tmp`,
      order.length,
      1,
      (e) => {
        throw e;
      },
      mode,
    );
    await shard.append(
      order.slice(0, 3).map((bytes, i) => ({ i, bytes })),
      (b) => returned.push(b),
    );
    await shard.append(
      order.slice(3).map((bytes, i) => ({ i: i + 3, bytes })),
      (b) => returned.push(b),
    );
    const size = await shard.finish();
    const back = fs.readFileSync(file);
    expect(size).toBe(back.length);
    expect(shard.sha256).toBe(createHash('sha256').update(back).digest('hex'));
    const index = shardIndex(back, order.length);
    for (let i = 0; i < order.length; i++) {
      const e = index[i];
      expect(e, `chunk ${i}`).not.toBeNull();
      if (!e) continue;
      expect(e.nbytes, `chunk ${i} length`).toBe(expected[i].length);
      expect(Buffer.compare(back.subarray(e.offset, e.offset + e.nbytes), expected[i]), `chunk ${i} bytes`).toBe(0);
      // Slab chunks start on a block boundary; the loose ones follow whatever came before.
      if (i !== 1 && i !== 7) expect(e.offset % DIRECT_ALIGN, `chunk ${i} offset ${e.offset}`).toBe(0);
    }
    // Padded to whole blocks: 5000 -> 8192, then the loose 123 bytes, a gap to 12288; 777 -> 4096,
    // and the loose last chunk unpadded right before the index.
    expect(index.map((e) => e?.offset)).toEqual([0, 8192, 12288, 16384, 20480, 32768, 45056, 49152]);
    expect(back.length).toBe(49152 + DIRECT_ALIGN + 9 + 16 * order.length + 4);
    // The padding is zeros (the stale bytes after a chunk never reach the file).
    const c0 = index[0] as { offset: number };
    expect([...back.subarray(c0.offset + 5000, c0.offset + 2 * DIRECT_ALIGN)].every((b) => b === 0)).toBe(true);
    // Every slot and loose array came back to its owner, by the same memory.
    for (const c of order) expect(returned.some((r) => r.buffer === c.buffer && r.byteOffset === c.byteOffset)).toBe(true);
    expect(paddedInPlace(loose[0]), 'ordinary memory is never padded in place').toBeNull();
  });

  it('the appender writes page-aligned whole blocks without staging them, anything else staged, in order', async () => {
    const dir = tmpDir('direct-parts');
    dirs.push(dir);
    const slab = pageAlignedBuffer(4 * DIRECT_ALIGN);
    if (!slab) throw new Error('no page-aligned memory in this runtime');
    const aligned = new Uint8Array(slab, DIRECT_ALIGN, 2 * DIRECT_ALIGN);
    aligned.set(randomBytes(aligned.length));
    const offBoundary = new Uint8Array(slab, 100, DIRECT_ALIGN);
    const small = new Uint8Array(randomBytes(DIRECT_ALIGN));
    const file = path.join(dir, 'f');
    const a = (await openAppender(file, new WriteMode(true))) as DirectAppender;
    try {
      // Staged first (a whole block), then in place; off a boundary: staged; after 100 bytes staged,
      // the aligned part must be staged too (its file offset is off a block).
      await a.append([small, aligned, offBoundary]);
      expect(a.writtenInPlace).toBe(2 * DIRECT_ALIGN);
      await a.append([small.subarray(0, 100), aligned]);
      expect(a.writtenInPlace).toBe(2 * DIRECT_ALIGN);
      await a.finish();
    } finally {
      await a.close();
    }
    const want = Buffer.concat([small, aligned, offBoundary, small.subarray(0, 100), aligned]);
    expect(Buffer.compare(fs.readFileSync(file), want)).toBe(0);
  });

  it('a write the kernel refuses midway (EINVAL) goes on buffered at the same position: the file is whole', async () => {
    const dir = tmpDir('direct-midway');
    dirs.push(dir);
    const file = path.join(dir, 'f');
    const said: string[] = [];
    const mode = new WriteMode(true, (_d, m) => said.push(m));
    const fh = await fs.promises.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_DIRECT);
    // Alignment 1: the whole 8 MiB goes through O_DIRECT, the 5-byte tail is a write the kernel refuses.
    const a = new DirectAppender(fh, file, mode, 1);
    const data = new Uint8Array(randomBytes(WRITE_BYTES + 5));
    try {
      await a.append([data.subarray(0, 1000), data.subarray(1000)]);
      await a.finish();
    } finally {
      await a.close();
    }
    expect(said).toEqual(['storage writes go through the page cache: the output file system refused O_DIRECT (EINVAL on a write)']);
    expect(mode.direct).toBe(false);
    expect(Buffer.compare(fs.readFileSync(file), data)).toBe(0);
  });

  it('a file system that refuses O_DIRECT (ramfs; tmpfs before Linux 6.6) gets buffered writes, said once, the same bytes', async () => {
    const dir = tmpDir('direct-ramfs');
    dirs.push(dir);
    mountFs(dir, { type: 'ramfs' });
    mounts.push(dir);
    const said: { direct: boolean; msg: string }[] = [];
    const mode = new WriteMode(true, (direct, msg) => said.push({ direct, msg }));
    for (const len of [5, WRITE_BYTES + 3]) {
      const data = new Uint8Array(randomBytes(len));
      await write(path.join(dir, `f${len}`), mode, data, [1_000_003]);
      expect(Buffer.compare(fs.readFileSync(path.join(dir, `f${len}`)), data)).toBe(0);
    }
    expect(mode.direct).toBe(false);
    expect(said).toEqual([
      { direct: false, msg: 'storage writes go through the page cache: the output file system refused O_DIRECT (EINVAL at open)' },
    ]);
  });
});
