/**
 * The Zarr v3 `sharding_indexed` file: inner chunks back to back, then the index (index_location
 * "end"): one (offset, nbytes) uint64 little-endian pair per inner chunk in C order, 2^64-1 for both
 * when the chunk is empty, followed by the index's crc32c (index_codecs [bytes, crc32c]).
 */
import { crc32c } from '../../workers/codecs/crc32c.js';

export const EMPTY = 0xffffffffffffffffn;

/** `chunks[i]` is the encoded inner chunk i in C order within the shard, or null when empty. */
export function buildShard(chunks: (Uint8Array | null)[]): Uint8Array[] {
  const n = chunks.length;
  const index = new Uint8Array(16 * n + 4);
  const dv = new DataView(index.buffer);
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const c = chunks[i];
    if (c && c.length > 0) {
      dv.setBigUint64(16 * i, BigInt(offset), true);
      dv.setBigUint64(16 * i + 8, BigInt(c.length), true);
      parts.push(c);
      offset += c.length;
    } else {
      dv.setBigUint64(16 * i, EMPTY, true);
      dv.setBigUint64(16 * i + 8, EMPTY, true);
    }
  }
  dv.setUint32(16 * n, crc32c(index.subarray(0, 16 * n)), true);
  parts.push(index);
  return parts;
}
