/**
 * Buffers made resident ahead: the touch leaves every byte as it was (the frame pool may already be
 * filling), it really makes the pages resident, the z-block pool is allocated whole, and the sidecar
 * does this at ring attach, before the producer's first frame.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { prefault } from '../src/pipeline/prefault.js';
import { BlockAssembler } from '../src/pipeline/block-assembler.js';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { pageAlignedBuffer } from '../src/zarr/appender.js';
import { shmPath, startTestApp, tmpDir, waitFor } from './helpers.js';
import type { TileGeometry } from '../workers/kernels/tiles.js';

const MiB = 1048576;
const files: string[] = [];
afterEach(() => {
  for (const f of files.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

/** Resident bytes of this process (/proc/self/statm counts pages). */
function rss(): number {
  return Number(fs.readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
}

describe('prefault', () => {
  it('leaves every byte as it was, in plain and page-aligned (WebAssembly) shared buffers', async () => {
    const plain = new SharedArrayBuffer(3 * MiB + 12);
    const aligned = pageAlignedBuffer(2 * MiB) as SharedArrayBuffer;
    const expected: Uint8Array[] = [];
    for (const b of [plain, aligned]) {
      const u = new Uint8Array(b);
      for (let i = 0; i < u.length; i++) u[i] = (i * 2654435761) >>> 24;
      expected.push(u.slice());
    }
    const r = await prefault([plain, aligned]).done;
    expect(r).toMatchObject({ bytes: plain.byteLength + aligned.byteLength, total: plain.byteLength + aligned.byteLength, stopped: false });
    expect(Buffer.compare(new Uint8Array(plain), expected[0])).toBe(0);
    expect(Buffer.compare(new Uint8Array(aligned), expected[1])).toBe(0);
  });

  it('makes the pages of a fresh buffer resident (the process grows by its size)', async () => {
    // A first thread's start-up grows RSS by up to ~14 MiB here (its isolate); later ones reuse that.
    await prefault([new SharedArrayBuffer(4096)]).done;
    const size = 256 * MiB;
    const b = new SharedArrayBuffer(size);
    const before = rss();
    await prefault([b]).done;
    const grown = rss() - before;
    // Other allocations in this process move RSS by a few MiB either way.
    expect(grown).toBeGreaterThan(size - 16 * MiB);
    expect(grown).toBeLessThan(size + 16 * MiB);
  });

  it('stops when told (the acquisition started): what it did not reach stays untouched', async () => {
    const b = new SharedArrayBuffer(64 * MiB);
    const before = rss();
    const p = prefault([b]);
    p.stop(); // before the thread's first look at the flag
    expect(await p.done).toMatchObject({ bytes: 0, total: 64 * MiB, stopped: true });
    expect(rss() - before).toBeLessThan(16 * MiB);
  });
});

describe('the z-block pool allocated ahead', () => {
  it('preallocate hands out the whole pool; frames then take blocks from it, none beyond', () => {
    const g: TileGeometry = { width: 64, height: 64, cx: 32, cy: 32, cz: 2, tilesX: 2, tilesY: 2, bytesPerPixel: 2, shuffled: true };
    const a = new BlockAssembler(g, 4, 3, () => undefined, 1024);
    const buffers = a.preallocate();
    // Three blocks of four 2x32x32 uint16 chunks, each with its pyramid region.
    expect(buffers.map((b) => b.byteLength)).toEqual([16384, 1024, 16384, 1024, 16384, 1024]);
    expect(a.inUse).toBe(0);
    const used = [0, 1, 2].map((t) => a.assign(t, 0, 0, 0, 0)?.block.buffer);
    expect(used.every((b) => b !== undefined && buffers.includes(b))).toBe(true);
    expect(new Set(used).size).toBe(3);
    expect(a.inUse).toBe(3);
    expect(a.assign(3, 0, 0, 0, 0)).toBeNull();
  });

  it('a pool of tiny blocks holds at most 256 blocks, all allocated ahead', () => {
    const g: TileGeometry = { width: 16, height: 16, cx: 16, cy: 16, cz: 2, tilesX: 1, tilesY: 1, bytesPerPixel: 1, shuffled: false };
    // A GiB holds 2^21 blocks of 512 bytes.
    const a = new BlockAssembler(g, 2, BlockAssembler.capacity(g, 1 << 30), () => undefined);
    expect(a.capacity).toBe(256);
    expect(a.preallocate().length).toBe(256);
    for (let t = 0; t < 256; t++) expect(a.assign(t, 0, 0, 0, 0)).not.toBeNull();
    expect(a.assign(256, 0, 0, 0, 0), 'the 257th block waits for one to be freed').toBeNull();
    expect(a.inUse).toBe(256);
    // Below the cap the pool's size decides.
    expect(BlockAssembler.capacity(g, 100 * 512)).toBe(100);
  });
});

describe('the sidecar at ring attach', () => {
  it('makes the frame pool, the z-block pool and the output slab resident before any frame', async () => {
    const ring = shmPath('prefault');
    const out = tmpDir('prefault');
    files.push(ring, `${ring}.lock`, `${ring}.seen`, out);
    const w = RingWriter.create(ring, {
      width: 256,
      height: 256,
      dtype: 'uint16',
      bitDepth: 16,
      slotCount: 8,
      zPlanes: 32,
      channels: 1,
      views: 1,
    });
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      storage: { out: path.join(out, 'data') },
      pipeline: { frame_pool_mib: 1, block_pool_mib: 16 },
    });
    try {
      const resident = () => rec.events.log?.find((l) => l.msg === 'buffers resident');
      await waitFor(() => resident() !== undefined, 30_000, 'the buffers resident log line');
      // Frame pool: 8 frames of 128 KiB. Blocks: 16 MiB / one 32x256x256 uint16 chunk = 4 blocks.
      // Output slab: 2 blocks' slots of 60 % of a chunk in whole 4 KiB blocks, in 64 KiB Wasm pages.
      const slab = Math.ceil((2 * Math.ceil((0.6 * 4 * MiB + 4096) / 4096) * 4096) / 65536) * 65536;
      expect(resident()?.fields).toMatchObject({ bytes: 1 * MiB + 16 * MiB + slab, of: 1 * MiB + 16 * MiB + slab });
      expect(rec.events['acquisition-started'] ?? []).toEqual([]);
    } finally {
      await app.stop();
      w.close();
    }
  });
});
