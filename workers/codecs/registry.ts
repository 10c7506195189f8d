/** Every chunk codec spimstream writes, by its `storage.codec` id (one descriptor per file). */
import { bloscCodec } from './blosc-codec.js';
import type { CodecDescriptor } from './codec.js';
import { CODEC_IDS } from './codec-ids.js';
import { gzipCodec } from './gzip-codec.js';
import { numcodecsCodec } from './numcodecs-codec.js';
import { rawCodec } from './raw-codec.js';

export const CODECS: readonly CodecDescriptor[] = [
  bloscCodec('zstd'),
  bloscCodec('lz4'),
  bloscCodec('zlib'),
  gzipCodec,
  numcodecsCodec('zstd'),
  numcodecsCodec('lz4'),
  rawCodec,
];

const byId = new Map(CODECS.map((c) => [c.id, c]));
if (byId.size !== CODEC_IDS.length || CODEC_IDS.some((id) => !byId.has(id))) throw new Error('codec registry and CODEC_IDS disagree');

/** The codec written under this id; the fallback when a native compressor is missing is blosc-zlib. */
export function codecById(id: string): CodecDescriptor {
  const c = byId.get(id);
  if (!c) throw new Error(`unknown codec "${id}"; known: ${CODEC_IDS.join(', ')}`);
  return c;
}

export const FALLBACK_CODEC = 'blosc-zlib';
