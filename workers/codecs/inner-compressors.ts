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
  /** Compresses src; returns the compressed bytes, or null when they would not be smaller. */
  compress(src: Uint8Array, level: number): Uint8Array | null;
}

const require = createRequire(import.meta.url);

interface ZstdModule {
  Compressor: new () => { setParameters(p: Record<string, number>): void; compress(b: Uint8Array): Buffer };
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

const zstd = tryRequire<ZstdModule>('zstd-napi');
const lz4 = tryRequire<Lz4Module>('lz4');

const zstdByLevel = new Map<number, InstanceType<ZstdModule['Compressor']>>();

const compressors: Partial<Record<InnerName, InnerCompressor>> = {
  zlib: {
    name: 'zlib',
    implementation: 'fflate (pure JS)',
    compress(src, level) {
      const out = zlibSync(src, { level: Math.min(9, Math.max(0, level)) as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 });
      return out.length < src.length ? out : null;
    },
  },
};

if (zstd) {
  compressors.zstd = {
    name: 'zstd',
    implementation: 'zstd-napi (native)',
    compress(src, level) {
      let c = zstdByLevel.get(level);
      if (!c) {
        c = new zstd.Compressor();
        c.setParameters({ compressionLevel: level });
        zstdByLevel.set(level, c);
      }
      const out = c.compress(src);
      return out.length < src.length ? new Uint8Array(out.buffer, out.byteOffset, out.length) : null;
    },
  };
}

if (lz4) {
  let scratch = new Uint8Array(0);
  compressors.lz4 = {
    name: 'lz4',
    implementation: 'lz4 (native)',
    compress(src) {
      const bound = lz4.encodeBound(src.length);
      if (scratch.length < bound) scratch = new Uint8Array(bound);
      const n = lz4.encodeBlock(src, scratch);
      return n > 0 && n < src.length ? scratch.subarray(0, n) : null;
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
