/**
 * The values `storage.codec` takes, one per codec descriptor in registry.ts (a test checks that the
 * two agree). Kept apart so the configuration can list them without loading any compressor.
 */
export const CODEC_IDS = ['blosc-zstd', 'blosc-lz4', 'blosc-zlib', 'gzip', 'numcodecs-blosc-zstd', 'numcodecs-blosc-lz4', 'none'] as const;

export type CodecId = (typeof CODEC_IDS)[number];
