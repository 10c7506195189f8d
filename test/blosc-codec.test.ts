import { describe, expect, it } from 'vitest';
import { Blosc } from 'numcodecs';
import { bloscEncode } from '../workers/codecs/blosc1.js';
import { codecAvailability, innerCompressor, type InnerName } from '../workers/codecs/inner-compressors.js';
import { crc32c, crc32cImplementation, crc32cJs } from '../workers/codecs/crc32c.js';
import { shuffle, unshuffle } from '../workers/codecs/shuffle.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';

// numcodecs' WASM c-blosc (what zarrita decodes with) is the independent reference decoder.
const reference = Blosc.fromConfig({ cname: 'lz4', clevel: 1, shuffle: 1, blocksize: 0 });

function sample(kind: string, n: number, rnd: () => number): Uint8Array {
  const b = new Uint8Array(n);
  if (kind === 'noise') for (let i = 0; i < n; i++) b[i] = (rnd() * 256) | 0;
  else if (kind === 'camera') {
    // uint16 little-endian around an offset of 100 with noise, like a low-signal sCMOS frame
    for (let i = 0; i + 1 < n; i += 2) {
      const v = 100 + Math.round((rnd() + rnd() + rnd() - 1.5) * 8) + (rnd() < 0.01 ? (rnd() * 3000) | 0 : 0);
      b[i] = v & 0xff;
      b[i + 1] = v >> 8;
    }
  } else if (kind === 'ramp') for (let i = 0; i < n; i++) b[i] = (i >> 4) & 0xff;
  return b; // 'zeros' stays zero
}

describe('Blosc 1 chunk writer', () => {
  it('native inner compressors are available on this machine (else the fallback is reported)', () => {
    const a = codecAvailability();
    expect(a.zlib).toMatch(/fflate/);
    // CI builds the optional native modules; their absence would silently cost 5x speed.
    expect(a.zstd).toMatch(/native/);
    expect(a.lz4).toMatch(/native/);
  });

  it('shuffle/unshuffle are inverse, including a tail that is not a whole element', () => {
    const rnd = mulberry32(7);
    for (const ts of [1, 2, 3, 4, 8]) {
      for (const n of [0, 1, 5, 64, 1001]) {
        const src = sample('noise', n, rnd);
        const mid = new Uint8Array(n);
        const back = new Uint8Array(n);
        shuffle(src, mid, ts, n);
        unshuffle(mid, back, ts, n);
        expect(Buffer.compare(Buffer.from(back), Buffer.from(src))).toBe(0);
      }
    }
  });

  it('thousands of chunks of every size edge case decode bit-exact with the numcodecs WASM c-blosc', async () => {
    const rnd = mulberry32(42);
    const sizes = [1, 2, 3, 7, 127, 128, 255, 256, 257, 4095, 4096, 65537, 131072, 1 << 20, (1 << 20) + 3];
    let checked = 0;
    for (const name of ['zstd', 'lz4', 'zlib'] as InnerName[]) {
      const inner = innerCompressor(name);
      expect(inner, name).toBeDefined();
      for (const n of sizes) {
        for (const kind of ['noise', 'zeros', 'camera', 'ramp']) {
          for (const typesize of [1, 2]) {
            for (const blocksize of [0, 256, 1000, 65536]) {
              if (n > 65537 && blocksize !== 0 && blocksize !== 65536) continue; // keep the run short
              for (const split of [false, true]) {
                const src = sample(kind, n, rnd);
                const enc = bloscEncode(src, inner!, { typesize, clevel: 1, shuffle: true, blocksize, split });
                const dec = (await reference.decode(enc)) as Uint8Array;
                expect(dec.length).toBe(n);
                if (Buffer.compare(Buffer.from(dec.buffer, dec.byteOffset, dec.length), Buffer.from(src)) !== 0) {
                  throw new Error(`mismatch: ${name} n=${n} ${kind} typesize=${typesize} blocksize=${blocksize} split=${split}`);
                }
                // header states what was written
                expect(enc[0]).toBe(2);
                expect(enc[3]).toBe(typesize);
                expect(new DataView(enc.buffer, enc.byteOffset).getUint32(12, true)).toBe(enc.length);
                checked++;
              }
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('a pre-shuffled whole-chunk block (the fused encode path) is byte-identical to shuffling in the writer', async () => {
    const rnd = mulberry32(12);
    for (const name of ['zstd', 'lz4'] as InnerName[]) {
      for (const n of [2, 256, 4096, 1 << 20, 1 << 22]) {
        for (const kind of ['camera', 'noise', 'zeros']) {
          const src = sample(kind, n, rnd);
          const split = name === 'lz4';
          const a = bloscEncode(src, innerCompressor(name)!, { typesize: 2, clevel: 1, shuffle: true, blocksize: n, split });
          const shuffled = new Uint8Array(n);
          shuffle(src, shuffled, 2, n);
          const b = bloscEncode(shuffled, innerCompressor(name)!, {
            typesize: 2,
            clevel: 1,
            shuffle: true,
            blocksize: 0,
            split,
            preShuffled: true,
          });
          expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), `${name} ${n} ${kind}`).toBe(0);
          const dec = (await reference.decode(b)) as Uint8Array;
          expect(
            Buffer.compare(Buffer.from(dec.buffer, dec.byteOffset, dec.length), Buffer.from(src)),
            `${name} ${n} ${kind} decodes`,
          ).toBe(0);
        }
      }
    }
  });

  it('compresses camera-like data (it is not silently storing raw)', () => {
    const src = sample('camera', 1 << 20, mulberry32(3));
    for (const name of ['zstd', 'zlib', 'lz4'] as InnerName[]) {
      const enc = bloscEncode(src, innerCompressor(name)!, { typesize: 2, clevel: 1, shuffle: true, blocksize: 0, split: name === 'lz4' });
      expect(src.length / enc.length, name).toBeGreaterThan(1.3);
    }
  });

  it('crc32c matches the standard check value and a bitwise reference', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    const bitwise = (d: Uint8Array) => {
      let c = 0xffffffff;
      for (const b of d) {
        c ^= b;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    const rnd = mulberry32(9);
    for (const n of [0, 1, 7, 8, 9, 63, 64, 65, 1000, 100_003]) {
      const d = sample('noise', n, rnd);
      expect(crc32c(d)).toBe(bitwise(d));
      expect(crc32cJs(d)).toBe(bitwise(d));
    }
    expect(crc32cImplementation).toMatch(/native/); // the optional native kernel installed here
  });
});
