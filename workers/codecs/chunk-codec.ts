/**
 * The chunk codec chain as configured (`storage.codec`), resolved once at start-up to what this
 * machine can run, plus the Zarr v3 codec metadata that describes exactly what gets written. Each
 * codec is a descriptor in registry.ts; this file only joins them with the crc32c tail.
 */
import { appendCrc32c, crc32c } from './crc32c.js';
import { codecAvailability } from './inner-compressors.js';
import { codecById, FALLBACK_CODEC } from './registry.js';
import type { ResolvedCodec } from './codec.js';

export type { ResolvedCodec } from './codec.js';

export function resolveCodec(requested: string, clevel: number, blocksize: number, checksum: boolean): ResolvedCodec {
  const avail = codecAvailability();
  let d = codecById(requested);
  let fallbackReason: string | null = null;
  if (d.needs && !avail[d.needs]) {
    fallbackReason = `native ${d.needs} is not available on this machine (optional npm dependency did not build); using ${FALLBACK_CODEC} (fflate)`;
    d = codecById(FALLBACK_CODEC);
  }
  return {
    requested,
    effective: d.id,
    implementation: d.implementation(avail),
    clevel: d.level(clevel),
    // 0 = one block per chunk (measured fastest with the fused extract+shuffle, same ratio); the async path takes none.
    blocksize: d.async ? 0 : Math.max(0, blocksize),
    split: d.split,
    checksum,
    async: d.async,
    fallbackReason,
  };
}

/** A chunk with its crc32c tail, in `into` (a slot of the output slab) when it fits, else a new array. */
function finish(out: Uint8Array, c: ResolvedCodec, into?: Uint8Array): Uint8Array {
  const tail = c.checksum ? 4 : 0;
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

/**
 * Encodes one inner chunk's raw little-endian bytes. `preShuffled`: raw is already byte-shuffled
 * (see `wantsPreShuffled`). `into`: where to put the result (a view of it is returned) when it fits.
 */
export function encodeChunk(raw: Uint8Array, typesize: number, c: ResolvedCodec, preShuffled = false, into?: Uint8Array): Uint8Array {
  const d = codecById(c.effective);
  if (!d.encode) throw new Error(`codec ${c.effective} encodes asynchronously (encodeChunkAsync)`);
  return finish(d.encode(raw, typesize, c, preShuffled), c, into);
}

/** The async path (the numcodecs reference): a new array with its crc32c tail. */
export async function encodeChunkAsync(raw: Uint8Array, c: ResolvedCodec): Promise<Uint8Array> {
  const d = codecById(c.effective);
  if (!d.encodeAsync) throw new Error(`codec ${c.effective} encodes synchronously (encodeChunk)`);
  const out = await d.encodeAsync(raw, c);
  return c.checksum ? appendCrc32c(out) : out;
}

/** True when the encode task may hand over a pre-shuffled chunk (one Blosc block = the whole chunk). */
export function wantsPreShuffled(c: ResolvedCodec, chunkBytes: number, typesize: number): boolean {
  return codecById(c.effective).preShuffled(c, chunkBytes, typesize);
}

/** Zarr v3 codec list for the inner chunks, from the array->bytes `bytes` codec to the checksum. */
export function chunkCodecMetadata(c: ResolvedCodec, typesize: number, chunkBytes: number): Record<string, unknown>[] {
  return [
    { name: 'bytes', configuration: { endian: 'little' } },
    ...codecById(c.effective).metadata(c, typesize, chunkBytes),
    ...(c.checksum ? [{ name: 'crc32c' }] : []),
  ];
}
