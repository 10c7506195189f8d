/**
 * What a chunk codec is to spimstream: one descriptor per `storage.codec` value, joined by
 * registry.ts. The configuration lists the ids, the store writes `metadata`, the pipeline asks
 * `preShuffled` (the frame task then lays chunks out byte-shuffled) and whether encoding is `async`
 * (no output slab), and the workers call `encode` or `encodeAsync`. Adding a codec is one file and
 * one line in the registry.
 */
import type { InnerName } from './inner-compressors.js';

export interface ResolvedCodec {
  /** What was asked for. */
  requested: string;
  /** What will be written (a registry id): the requested codec, or its fallback. */
  effective: string;
  implementation: string;
  clevel: number;
  blocksize: number;
  /** Split blosc blocks into per-byte streams (on for lz4, as c-blosc does; off for entropy coders). */
  split: boolean;
  checksum: boolean;
  /** Encoded by an async implementation that returns new arrays (no output slab). */
  async: boolean;
  fallbackReason: string | null;
}

export interface CodecDescriptor {
  readonly id: string;
  /** A native inner compressor this codec needs (null: always available). */
  readonly needs: InnerName | null;
  /** Encoded asynchronously into new arrays (the numcodecs reference path). */
  readonly async: boolean;
  /** How this machine runs it, for the log and spimstream_build_info. */
  implementation(avail: Record<InnerName, string | null>): string;
  /** The level as this codec takes it. */
  level(clevel: number): number;
  /** Split blosc blocks into per-byte streams. */
  readonly split: boolean;
  /** Zarr v3 codecs after `bytes` and before an optional crc32c. */
  metadata(c: ResolvedCodec, typesize: number, chunkBytes: number): Record<string, unknown>[];
  /** Takes chunks the frame task already byte-shuffled (one Blosc block = the whole chunk). */
  preShuffled(c: ResolvedCodec, chunkBytes: number, typesize: number): boolean;
  /** Synchronous encode of a chunk's raw little-endian bytes (may return a view of scratch memory). */
  encode?(raw: Uint8Array, typesize: number, c: ResolvedCodec, preShuffled: boolean): Uint8Array;
  /** Asynchronous encode into a new array. */
  encodeAsync?(raw: Uint8Array, c: ResolvedCodec): Promise<Uint8Array>;
}
