/**
 * Block compressors that the Blosc writer uses for its inner streams. Native ones (zstd-napi,
 * lz4) come from optional npm dependencies built with node-gyp; where they did not build, the
 * pure-JS fflate zlib is the fallback (chosen automatically, reported by `codecAvailability`).
 */
import { createRequire } from 'node:module';
import { zlibSync } from 'fflate';

export type InnerName = 'zstd' | 'lz4' | 'zlib';

/** Blosc 1 compressor codes (header flags bits 5-7). */
export const BLOSC_CODE: Record<InnerName, number> = { lz4: 1, zlib: 3, zstd: 4 };

export interface InnerCompressor {
  name: InnerName;
  implementation: string;
  /** Room `compressInto` may need for n input bytes. */
  bound(n: number): number;
  /**
   * Compresses src straight into dst (at least `bound(src.length)` bytes): no allocation per call,
   * which on this hot path was a 4 MiB malloc + page faults + GC pressure per chunk. Returns the
   * compressed length, or -1 when it would not be smaller than src.
   */
  compressInto(src: Uint8Array, dst: Uint8Array, level: number): number;
}

const require = createRequire(import.meta.url);

/** zstd-napi's low-level binding (ZSTD_compress2 into a caller's buffer). */
interface ZstdBinding {
  CCtx: new () => { setParameter(param: number, value: number): void; compress2(dst: Uint8Array, src: Uint8Array): number };
  CParameter: { compressionLevel: number };
  compressBound(n: number): number;
}
interface Lz4Module {
  encodeBlock(src: Uint8Array, dst: Uint8Array): number;
  encodeBound(n: number): number;
}

function tryRequire<T>(name: string): T | null {
  try {
    return require(name) as T;
  } catch {
    return null;
  }
}

const zstd = tryRequire<ZstdBinding>('zstd-napi/binding');
const lz4 = tryRequire<Lz4Module>('lz4');

const zstdByLevel = new Map<number, InstanceType<ZstdBinding['CCtx']>>();

const compressors: Partial<Record<InnerName, InnerCompressor>> = {
  zlib: {
    name: 'zlib',
    implementation: 'fflate (pure JS)',
    // deflate's worst case: 5 bytes per 64 KiB stored block, plus the zlib header and adler32.
    bound: (n) => n + 5 * Math.ceil(n / 65535 + 1) + 6,
    compressInto(src, dst, level) {
      const out = zlibSync(src, { level: Math.min(9, Math.max(0, level)) as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 });
      if (out.length >= src.length || out.length > dst.length) return -1;
      dst.set(out);
      return out.length;
    },
  },
};

if (zstd) {
  compressors.zstd = {
    name: 'zstd',
    implementation: 'zstd-napi (native)',
    bound: (n) => zstd.compressBound(n),
    compressInto(src, dst, level) {
      let c = zstdByLevel.get(level);
      if (!c) {
        c = new zstd.CCtx();
        c.setParameter(zstd.CParameter.compressionLevel, level);
        zstdByLevel.set(level, c);
      }
      const n = c.compress2(dst, src);
      return n < src.length ? n : -1;
    },
  };
}

if (lz4) {
  compressors.lz4 = {
    name: 'lz4',
    implementation: 'lz4 (native)',
    bound: (n) => lz4.encodeBound(n),
    compressInto(src, dst) {
      const n = lz4.encodeBlock(src, dst);
      return n > 0 && n < src.length ? n : -1;
    },
  };
}

export function innerCompressor(name: InnerName): InnerCompressor | undefined {
  return compressors[name];
}

export function codecAvailability(): Record<InnerName, string | null> {
  return {
    zstd: compressors.zstd?.implementation ?? null,
    lz4: compressors.lz4?.implementation ?? null,
    zlib: compressors.zlib?.implementation ?? null,
  };
}
