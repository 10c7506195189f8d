import { describe, expect, it } from 'vitest';
import { Blosc } from 'numcodecs';
import { gunzipSync } from 'node:zlib';
import { histogramToTiles, chunkBytesOf, type TileGeometry } from '../workers/kernels/tiles.js';
import { runEncodeTask } from '../workers/encode-task.js';
import { resolveCodec, type ResolvedCodec } from '../workers/codecs/chunk-codec.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';

// The frame task writes each stored plane into a chunk-major z-block during its histogram pass;
// the encoder compresses each chunk in place. These tests rebuild every chunk independently from
// the frames and compare: the histogram, the block bytes, and the decoded chunk, bit-exact.

const reference = Blosc.fromConfig({ cname: 'lz4', clevel: 1, shuffle: 1, blocksize: 0 });

function frame(w: number, h: number, bpp: number, rnd: () => number, zero = false): Uint16Array | Uint8Array {
  const px = bpp === 2 ? new Uint16Array(new SharedArrayBuffer(w * h * 2)) : new Uint8Array(new SharedArrayBuffer(w * h));
  if (!zero)
    for (let i = 0; i < px.length; i++)
      px[i] = bpp === 2 ? 100 + ((rnd() * 60) | 0) + (rnd() < 0.01 ? (rnd() * 60000) | 0 : 0) : (rnd() * 256) | 0;
  return px;
}

/** The chunk (tile t) as plain little-endian bytes, straight from the definition. */
function expectedChunk(frames: (Uint16Array | Uint8Array | null)[], g: TileGeometry, t: number): Uint8Array {
  const ty = Math.floor(t / g.tilesX);
  const tx = t % g.tilesX;
  const out = new Uint8Array(chunkBytesOf(g));
  for (let z = 0; z < g.cz; z++) {
    const f = frames[z];
    if (!f) continue;
    for (let y = 0; y < g.cy; y++) {
      for (let x = 0; x < g.cx; x++) {
        const fy = ty * g.cy + y;
        const fx = tx * g.cx + x;
        if (fy >= g.height || fx >= g.width) continue;
        const v = f[fy * g.width + fx];
        const e = (z * g.cy + y) * g.cx + x;
        if (g.bytesPerPixel === 1) out[e] = v;
        else {
          out[2 * e] = v & 0xff;
          out[2 * e + 1] = v >> 8;
        }
      }
    }
  }
  return out;
}

async function decode(enc: Uint8Array, c: ResolvedCodec): Promise<Uint8Array> {
  const body = c.checksum ? enc.subarray(0, enc.length - 4) : enc;
  if (c.effective === 'gzip') return new Uint8Array(gunzipSync(body));
  return (await reference.decode(body)) as Uint8Array;
}

const cases: { name: string; w: number; h: number; bpp: number; chunk: [number, number, number]; codec: string }[] = [
  {
    name: 'uint16, width 4k, blosc-zstd (fused shuffled path, partial edge tiles)',
    w: 100,
    h: 70,
    bpp: 2,
    chunk: [4, 32, 32],
    codec: 'blosc-zstd',
  },
  { name: 'uint16, odd width, blosc-zstd (generic shuffled path)', w: 37, h: 21, bpp: 2, chunk: [3, 16, 16], codec: 'blosc-zstd' },
  { name: 'uint16, width 2 mod 4, blosc-zstd (generic path)', w: 66, h: 40, bpp: 2, chunk: [3, 32, 32], codec: 'blosc-zstd' },
  { name: 'uint16, even, blosc-lz4', w: 64, h: 64, bpp: 2, chunk: [4, 32, 32], codec: 'blosc-lz4' },
  { name: 'uint16, even, gzip (plain layout)', w: 64, h: 48, bpp: 2, chunk: [3, 32, 32], codec: 'gzip' },
  { name: 'uint8, odd, blosc-zstd (generic path)', w: 45, h: 33, bpp: 1, chunk: [3, 16, 16], codec: 'blosc-zstd' },
  { name: 'uint8, width 4k, blosc-zstd (word path, partial edge tiles)', w: 72, h: 40, bpp: 1, chunk: [3, 32, 32], codec: 'blosc-zstd' },
];

describe('chunk-major z-blocks (frame task writes, encoder compresses in place)', () => {
  for (const k of cases) {
    it(`${k.name}: histogram, block bytes and decoded chunks are exact, also for a reused block with a lost plane`, async () => {
      const rnd = mulberry32(7);
      const codec = resolveCodec(k.codec, 1, 0, true);
      const [cz, cy, cx] = k.chunk;
      const g: TileGeometry = {
        width: k.w,
        height: k.h,
        bytesPerPixel: k.bpp,
        cz,
        cy,
        cx,
        tilesX: Math.ceil(k.w / cx),
        tilesY: Math.ceil(k.h / cy),
        shuffled: k.bpp === 2 && codec.effective.startsWith('blosc-'),
      };
      const ntiles = g.tilesX * g.tilesY;
      const block = new SharedArrayBuffer(ntiles * chunkBytesOf(g));
      // Round 1 fills every plane; round 2 reuses the buffer with plane 1 lost and one all-zero frame
      // (stale samples of round 1 must not leak into round 2's chunks).
      for (const round of [1, 2]) {
        const nonZero = new SharedArrayBuffer(ntiles);
        const frames: (Uint16Array | Uint8Array | null)[] = [];
        for (let z = 0; z < cz; z++) {
          if (round === 2 && z === 1) {
            frames.push(null);
            continue;
          }
          const f = frame(k.w, k.h, k.bpp, rnd, round === 2 && z === 0);
          frames.push(f);
          const hist = new Uint32Array(65536);
          histogramToTiles(f, hist, block, z, g, new Uint8Array(nonZero));
          const want = new Uint32Array(65536);
          for (const v of f) want[v]++;
          expect(Buffer.compare(Buffer.from(hist.buffer), Buffer.from(want.buffer))).toBe(0);
        }
        const present = frames.map((f) => (f ? 1 : 0));
        // Round 2 encodes every chunk into one reused slot of a shared output slab, as the pipeline does
        // (the slot sits at an offset, after bytes that must stay untouched).
        const slab = new SharedArrayBuffer(64 + 2 * chunkBytesOf(g));
        const out = round === 2 ? { buffer: slab, offset: 64, bytes: 2 * chunkBytesOf(g) } : null;
        new Uint8Array(slab).fill(0xab, 0, 64);
        for (let t = 0; t < ntiles; t++) {
          const want = expectedChunk(frames, g, t);
          const r = runEncodeTask({ kind: 'encode', block, nonZero, tile: t, geometry: g, present, codec, out });
          if (out) expect(typeof r, 'written into the slot').toBe('number');
          const enc = typeof r === 'number' ? new Uint8Array(slab, 64, r) : r;
          expect(new Uint8Array(slab, 0, 64).every((v) => v === 0xab)).toBe(true);
          if (want.every((v) => v === 0)) {
            expect(enc.length, `tile ${t} is all fill value`).toBe(0);
            continue;
          }
          const got = await decode(enc, codec);
          expect(got.length).toBe(want.length);
          expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.length), Buffer.from(want)), `round ${round} tile ${t}`).toBe(
            0,
          );
        }
      }
    });
  }
});
