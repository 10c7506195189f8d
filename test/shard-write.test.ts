import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WRITE_BYTES, writeAll } from '../src/zarr/appender.js';
import { hashInTurns } from '../src/zarr/shard-file.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import { tmpDir } from './helpers.js';

// Shard appends are cut into writes of at most WRITE_BYTES (large writev calls cost the kernel 4x
// the CPU per GB): the file must still hold exactly the parts in order, at the file position or at
// an explicit offset, whatever the part sizes.

describe('writeAll: bounded write calls, exact bytes', () => {
  it('parts smaller, equal to and larger than one write call, some empty, read back bit-exact', async () => {
    const rnd = mulberry32(3);
    const sizes = [1, 0, WRITE_BYTES - 1, 2, WRITE_BYTES, 3 * WRITE_BYTES + 17, 0, 1_400_000, 5];
    const parts = sizes.map((n) => {
      const p = new Uint8Array(n);
      for (let i = 0; i < n; i += 997) p[i] = (rnd() * 256) | 0;
      return p;
    });
    const want = Buffer.concat(parts);
    const dir = tmpDir('write-all');
    for (const position of [null, 4096]) {
      const file = path.join(dir, `f-${position ?? 'pos'}`);
      const fh = await fs.promises.open(file, 'w');
      const prefix = new Uint8Array(4096).fill(0xee);
      if (position !== null) await fh.write(prefix, 0, prefix.length, 0);
      const n = await writeAll(fh, parts, position);
      // a second append at the file position continues after the first
      if (position === null) expect(await writeAll(fh, [new Uint8Array([9, 8, 7])], null)).toBe(3);
      await fh.close();
      expect(n).toBe(want.length);
      const got = fs.readFileSync(file);
      if (position === null) {
        expect(got.length).toBe(want.length + 3);
        expect(Buffer.compare(got.subarray(0, want.length), want)).toBe(0);
        expect([...got.subarray(want.length)]).toEqual([9, 8, 7]);
      } else {
        expect(Buffer.compare(got.subarray(0, 4096), Buffer.from(prefix))).toBe(0);
        expect(Buffer.compare(got.subarray(4096), want)).toBe(0);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("a shard's SHA-256 while it is written", () => {
  it('hashes one part per event-loop turn (other work runs between parts), same digest as one pass', async () => {
    const rnd = mulberry32(5);
    const parts = [1_400_000, 0, 7, 2_000_000, 4096].map((n) => {
      const p = new Uint8Array(n);
      for (let i = 0; i < n; i++) p[i] = (rnd() * 256) | 0;
      return p;
    });
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const real = createHash('sha256');
    const turnAtUpdate: number[] = [];
    await hashInTurns(
      {
        update(p) {
          turnAtUpdate.push(turns);
          return real.update(p);
        },
      },
      parts,
    );
    ticking = false;
    expect(turnAtUpdate.length).toBe(parts.length);
    for (let i = 1; i < turnAtUpdate.length; i++) expect(turnAtUpdate[i]).toBeGreaterThan(turnAtUpdate[i - 1]);
    expect(real.digest('hex')).toBe(createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
  });
});
