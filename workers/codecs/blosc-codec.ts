/**
 * Blosc 1 chunks written by spimstream's own writer (blosc1.ts) with a native inner compressor:
 * byte shuffle, one block per chunk by default, which lets the frame task pre-shuffle the chunk.
 */
import { bloscEncode } from './blosc1.js';
import { innerCompressor, type InnerName } from './inner-compressors.js';
import type { CodecDescriptor } from './codec.js';

export function bloscCodec(inner: InnerName): CodecDescriptor {
  return {
    id: `blosc-${inner}`,
    needs: inner,
    async: false,
    split: inner === 'lz4',
    implementation: (avail) => `blosc1 writer + ${avail[inner]}`,
    level: (clevel) => (inner === 'lz4' ? Math.max(1, clevel) : inner === 'zlib' ? Math.min(9, clevel) : clevel),
    metadata: (c, typesize, chunkBytes) => [
      {
        name: 'blosc',
        configuration: {
          cname: inner,
          clevel: c.clevel,
          shuffle: 'shuffle',
          typesize,
          blocksize: c.blocksize === 0 ? chunkBytes : Math.min(c.blocksize, chunkBytes),
        },
      },
    ],
    preShuffled: (c, chunkBytes, typesize) => typesize === 2 && (c.blocksize === 0 || c.blocksize >= chunkBytes),
    encode(raw, typesize, c, preShuffled) {
      const comp = innerCompressor(inner);
      if (!comp) throw new Error(`codec ${c.effective} is not available in this worker`);
      return bloscEncode(raw, comp, {
        typesize,
        clevel: c.clevel,
        shuffle: true,
        blocksize: c.blocksize,
        split: c.split,
        preShuffled,
        view: true,
      });
    },
  };
}
