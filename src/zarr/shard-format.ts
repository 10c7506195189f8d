/**
 * The Zarr v3 `sharding_indexed` index (index_location "end"): one (offset, nbytes) uint64
 * little-endian pair per inner chunk in C order, 2^64-1 for both when the chunk is empty, followed by
 * the index's crc32c (index_codecs [bytes, crc32c]). Chunks may lie in the file in any order.
 */
import { crc32c } from '../../workers/codecs/crc32c.js';

/** An index of n inner chunks, all empty until `set`. */
export class ShardIndex {
  private readonly bytes: Uint8Array;
  private readonly dv: DataView;

  constructor(readonly n: number) {
    this.bytes = new Uint8Array(16 * n + 4).fill(0xff, 0, 16 * n);
    this.dv = new DataView(this.bytes.buffer);
  }

  set(i: number, offset: number, nbytes: number): void {
    this.dv.setBigUint64(16 * i, BigInt(offset), true);
    this.dv.setBigUint64(16 * i + 8, BigInt(nbytes), true);
  }

  /** The index as stored at the end of the shard, its crc32c included. */
  encode(): Uint8Array {
    this.dv.setUint32(16 * this.n, crc32c(this.bytes.subarray(0, 16 * this.n)), true);
    return this.bytes;
  }
}
