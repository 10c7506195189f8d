/**
 * Chunk job: one inner chunk of a chunk-major z-block (the frame tasks already wrote it in the
 * layout the codec wants, byte-shuffled for Blosc), encoded in place with the chunk codec.
 */
import { encodeChunk, encodeChunkAsync } from './codecs/chunk-codec.js';
import { chunkBytesOf, zeroTilePlane } from './kernels/tiles.js';
import type { EncodeTask } from './tasks.js';

/** The chunk's bytes, with planes that never arrived set to 0; null when every sample is 0. */
function chunkRegion(t: EncodeTask): Uint8Array | null {
  if (new Uint8Array(t.nonZero)[t.tile] === 0) return null;
  const g = t.geometry;
  const bytes = chunkBytesOf(g);
  const region = new Uint8Array(t.block, t.tile * bytes, bytes);
  // The buffer is reused between blocks: a lost frame's plane still holds an older block's samples.
  for (let z = 0; z < g.cz; z++) if (!t.present[z]) zeroTilePlane(region, z, g);
  return region;
}

/** An async codec (the numcodecs reference path, plain layout): a new array. */
export async function runEncodeTaskAsync(t: EncodeTask): Promise<Uint8Array> {
  const region = chunkRegion(t);
  return region ? encodeChunkAsync(region.slice(), t.codec) : new Uint8Array(0);
}

/**
 * Encodes the chunk into the task's output slot and returns its length; when it does not fit there
 * (poorly compressible data) or the task has no slot, returns the chunk as a new array. Length 0
 * means every sample is the fill value 0 (the chunk is then not stored; the shard index marks it empty).
 */
export function runEncodeTask(t: EncodeTask): number | Uint8Array {
  const region = chunkRegion(t);
  if (!region) return t.out ? 0 : new Uint8Array(0);
  const into = t.out ? new Uint8Array(t.out.buffer, t.out.offset, t.out.bytes) : undefined;
  const enc = encodeChunk(region, t.geometry.bytesPerPixel, t.codec, t.geometry.shuffled, into);
  return into && enc.buffer === into.buffer && enc.byteOffset === into.byteOffset ? enc.length : enc;
}
