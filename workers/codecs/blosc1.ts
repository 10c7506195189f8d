/**
 * Writer of the Blosc 1 chunk format (what the Zarr v3 `blosc` codec stores), so chunks decode with
 * any c-blosc (numcodecs, zarr-python, tensorstore, zarrita's WASM) while the compression itself runs
 * in a native block compressor. Layout per c-blosc README_CHUNK_FORMAT: 16-byte header, int32 block
 * starts, then per block one stream (or `typesize` streams when split), each [int32 csize][bytes];
 * a stream that does not shrink is stored raw with csize = its length.
 */
import { shuffle, unshuffle } from './shuffle.js';
import { BLOSC_CODE, type InnerCompressor } from './inner-compressors.js';

const FLAG_SHUFFLE = 0x1;
const FLAG_MEMCPYED = 0x2;
const FLAG_DONT_SPLIT = 0x10;
const MAX_OVERHEAD = 16;

export interface BloscOptions {
  typesize: number;
  clevel: number;
  shuffle: boolean;
  /** Bytes per block; 0 picks DEFAULT_BLOCKSIZE. Clamped to the input size. */
  blocksize: number;
  /** Split full blocks into `typesize` streams (c-blosc does for lz4/blosclz). */
  split: boolean;
  /** `src` is already byte-shuffled as ONE block (the encode task fuses tile extraction and shuffle). */
  preShuffled?: boolean;
  /** Return a view of the internal scratch buffer (valid until the next call) instead of a copy. */
  view?: boolean;
}

export const DEFAULT_BLOCKSIZE = 1 << 20;

let tmp = new Uint8Array(0);
let scratchOut = new Uint8Array(0);

export function bloscEncode(src: Uint8Array, inner: InnerCompressor, o: BloscOptions): Uint8Array {
  const nbytes = src.length;
  const typesize = Math.max(1, Math.min(255, o.typesize));
  let blocksize = o.preShuffled ? nbytes : Math.min(o.blocksize > 0 ? o.blocksize : DEFAULT_BLOCKSIZE, nbytes);
  if (blocksize > typesize) blocksize -= blocksize % typesize;
  const nblocks = nbytes === 0 ? 0 : Math.ceil(nbytes / blocksize);
  const leftover = nbytes % blocksize;
  const doShuffle = o.shuffle && typesize > 1;
  let flags = (BLOSC_CODE[inner.name] << 5) | (doShuffle ? FLAG_SHUFFLE : 0);
  if (!o.split) flags |= FLAG_DONT_SPLIT;
  // Worst case: every stream at the compressor's bound, plus headers and block starts.
  const streamsPerBlock = o.split ? typesize : 1;
  const cap = MAX_OVERHEAD + 4 * nblocks + nblocks * streamsPerBlock * (4 + inner.bound(Math.ceil(blocksize / streamsPerBlock)));
  // One reused scratch output (not zero-filled); the result is copied out at the end.
  if (scratchOut.length < cap) scratchOut = new Uint8Array(Buffer.allocUnsafeSlow(cap).buffer, 0, cap);
  const out = scratchOut;
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (tmp.length < blocksize) tmp = new Uint8Array(blocksize);
  let pos = MAX_OVERHEAD + 4 * nblocks;
  for (let b = 0; b < nblocks; b++) {
    dv.setInt32(MAX_OVERHEAD + 4 * b, pos, true);
    const isLeftover = leftover > 0 && b === nblocks - 1;
    const bsize = isLeftover ? leftover : blocksize;
    const blk = src.subarray(b * blocksize, b * blocksize + bsize);
    let data = blk;
    if (doShuffle && !o.preShuffled) {
      shuffle(blk, tmp, typesize, bsize);
      data = tmp.subarray(0, bsize);
    }
    // c-blosc splits only full blocks of at least MIN_BUFFERSIZE (128) elements, typesize <= 16.
    const nstreams = o.split && !isLeftover && typesize <= 16 && blocksize / typesize >= 128 ? typesize : 1;
    const slen = bsize / nstreams;
    for (let s = 0; s < nstreams; s++) {
      const stream = data.subarray(s * slen, (s + 1) * slen);
      const clen = inner.compressInto(stream, out.subarray(pos + 4), o.clevel);
      if (clen > 0) {
        dv.setInt32(pos, clen, true);
        pos += 4 + clen;
      } else {
        dv.setInt32(pos, stream.length, true);
        out.set(stream, pos + 4);
        pos += 4 + stream.length;
      }
    }
  }
  if (pos >= nbytes + MAX_OVERHEAD || nbytes === 0) {
    // Did not compress: store the whole chunk raw ("memcpyed"), header + data, unshuffled.
    const raw = new Uint8Array(MAX_OVERHEAD + nbytes);
    writeHeader(raw, flags | FLAG_MEMCPYED | FLAG_DONT_SPLIT, typesize, nbytes, blocksize, raw.length);
    if (o.preShuffled && doShuffle) unshuffle(src, raw.subarray(MAX_OVERHEAD), typesize, nbytes);
    else raw.set(src, MAX_OVERHEAD);
    return raw;
  }
  writeHeader(out, flags, typesize, nbytes, blocksize, pos);
  return o.view ? out.subarray(0, pos) : out.slice(0, pos);
}

function writeHeader(out: Uint8Array, flags: number, typesize: number, nbytes: number, blocksize: number, cbytes: number): void {
  const dv = new DataView(out.buffer, out.byteOffset);
  out[0] = 2; // format version
  out[1] = 1; // inner codec format version
  out[2] = flags;
  out[3] = typesize;
  dv.setUint32(4, nbytes, true);
  dv.setUint32(8, blocksize, true);
  dv.setUint32(12, cbytes, true);
}
