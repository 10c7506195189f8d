/**
 * The chunk codec chain as configured (`storage.codec`), resolved once at start-up to what this
 * machine can run, plus the Zarr v3 codec metadata that describes exactly what gets written.
 */
import { gzipSync } from 'fflate';
import { bloscEncode } from './blosc1.js';
import { appendCrc32c, crc32c } from './crc32c.js';
import { codecAvailability, innerCompressor, type InnerName } from './inner-compressors.js';

export interface ResolvedCodec {
  /** What was asked for. */
  requested: string;
  /** What will be written: blosc-zstd | blosc-lz4 | blosc-zlib | gzip | none. */
  effective: string;
  implementation: string;
  clevel: number;
  blocksize: number;
  /** Split blosc blocks into per-byte streams (on for lz4, as c-blosc does; off for entropy coders). */
  split: boolean;
  checksum: boolean;
  fallbackReason: string | null;
}

export function resolveCodec(requested: string, clevel: number, blocksize: number, checksum: boolean): ResolvedCodec {
  const avail = codecAvailability();
  if (requested.startsWith('numcodecs-')) {
    // zarrita's own WASM c-blosc, kept selectable as the reference path: it hard-wires typesize 4 and
    // ignores the shuffle setting, so these chunks are unshuffled and the metadata says so.
    return {
      requested, effective: requested, implementation: 'numcodecs WASM c-blosc (no shuffle)', clevel, blocksize: 0,
      split: false, checksum, fallbackReason: null,
    };
  }
  let effective = requested;
  let fallbackReason: string | null = null;
  const innerOf = (e: string) => e.replace('blosc-', '') as InnerName;
  if (effective.startsWith('blosc-') && !avail[innerOf(effective)]) {
    fallbackReason = `native ${innerOf(effective)} is not available on this machine (optional npm dependency did not build); using blosc-zlib (fflate)`;
    effective = 'blosc-zlib';
  }
  const implementation = effective === 'gzip' ? 'fflate gzip' : effective === 'none' ? 'raw' : `blosc1 writer + ${avail[innerOf(effective)]}`;
  const inner = effective.startsWith('blosc-') ? innerOf(effective) : null;
  const level = inner === 'lz4' ? Math.max(1, clevel) : effective === 'gzip' || inner === 'zlib' ? Math.min(9, clevel) : clevel;
  return {
    requested, effective, implementation, clevel: level,
    // 0 = one block per chunk (measured fastest with the fused extract+shuffle, same ratio).
    blocksize: blocksize > 0 ? blocksize : 0,
    split: inner === 'lz4', checksum, fallbackReason,
  };
}

/**
 * Encodes one inner chunk's raw little-endian bytes. `preShuffled`: raw is already byte-shuffled
 * (blosc codecs with a whole-chunk block only; see `wantsPreShuffled`). `into`: where to put the
 * result (a slot of the output slab; a view of it is returned) when it fits, else a new array.
 */
export function encodeChunk(raw: Uint8Array, typesize: number, c: ResolvedCodec, preShuffled = false, into?: Uint8Array): Uint8Array {
  const tail = c.checksum ? 4 : 0;
  let out: Uint8Array;
  if (c.effective === 'gzip') {
    out = gzipSync(raw, { level: c.clevel as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9, mtime: 0 });
  } else if (c.effective === 'none') {
    out = raw;
  } else {
    const inner = innerCompressor(c.effective.replace('blosc-', '') as InnerName);
    if (!inner) throw new Error(`codec ${c.effective} is not available in this worker`);
    out = bloscEncode(raw, inner, { typesize, clevel: c.clevel, shuffle: true, blocksize: c.blocksize, split: c.split, preShuffled, view: true });
  }
  const n = out.length + tail;
  let result: Uint8Array;
  if (into && n <= into.length) {
    into.set(out);
    result = into.subarray(0, n);
  } else {
    result = new Uint8Array(n);
    result.set(out);
  }
  if (c.checksum) new DataView(result.buffer, result.byteOffset).setUint32(out.length, crc32c(result.subarray(0, out.length)), true);
  return result;
}

/** True when the encode task may hand over a pre-shuffled chunk (one Blosc block = the whole chunk). */
export function wantsPreShuffled(c: ResolvedCodec, chunkBytes: number, typesize: number): boolean {
  return c.effective.startsWith('blosc-') && typesize === 2 && (c.blocksize === 0 || c.blocksize >= chunkBytes);
}

type NumcodecsBlosc = { encode(b: Uint8Array): Promise<Uint8Array> };
const numcodecsByName = new Map<string, NumcodecsBlosc>();

/** The numcodecs path (async: its WASM module loads on first use). */
export async function encodeChunkNumcodecs(raw: Uint8Array, c: ResolvedCodec): Promise<Uint8Array> {
  const cname = c.effective.replace('numcodecs-blosc-', '');
  let codec = numcodecsByName.get(cname);
  if (!codec) {
    const { Blosc } = (await import('numcodecs')) as unknown as { Blosc: { fromConfig(cfg: Record<string, unknown>): NumcodecsBlosc } };
    codec = Blosc.fromConfig({ cname, clevel: c.clevel, shuffle: 0, blocksize: 0 });
    numcodecsByName.set(cname, codec);
  }
  const out = new Uint8Array(await codec.encode(raw));
  return c.checksum ? appendCrc32c(out) : out;
}

/** Zarr v3 codec list for the inner chunks (after the array->bytes `bytes` codec). */
export function chunkCodecMetadata(c: ResolvedCodec, typesize: number, chunkBytes: number): Record<string, unknown>[] {
  const list: Record<string, unknown>[] = [{ name: 'bytes', configuration: { endian: 'little' } }];
  if (c.effective === 'gzip') list.push({ name: 'gzip', configuration: { level: c.clevel } });
  else if (c.effective.startsWith('numcodecs-blosc-')) {
    list.push({ name: 'blosc', configuration: { cname: c.effective.replace('numcodecs-blosc-', ''), clevel: c.clevel, shuffle: 'noshuffle', typesize: 4, blocksize: 0 } });
  }
  else if (c.effective.startsWith('blosc-')) {
    list.push({
      name: 'blosc',
      configuration: {
        cname: c.effective.replace('blosc-', ''), clevel: c.clevel, shuffle: 'shuffle', typesize,
        blocksize: c.blocksize === 0 ? chunkBytes : Math.min(c.blocksize, chunkBytes),
      },
    });
  }
  if (c.checksum) list.push({ name: 'crc32c' });
  return list;
}
