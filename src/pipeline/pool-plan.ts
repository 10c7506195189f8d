/**
 * What one acquisition's storage buffers hold, from `pipeline.block_pool_mib`: the z-blocks of the
 * pool, the output slab's slots for encoded chunks, and the warnings a facility engineer needs when
 * the pool is too small for the streams or larger than the disk guard's margin.
 */
import type { Config } from '../config/config.js';
import { chunkBytesOf, type TileGeometry } from '../../workers/kernels/tiles.js';
import { BlockAssembler } from './block-assembler.js';
import { wholeBlocks } from '../zarr/appender.js';

export interface PoolPlan {
  maxBlocks: number;
  /** Output slab: bytes per slot and slots (null: the codec returns new arrays, no slab). */
  slab: { slotBytes: number; slots: number } | null;
  warnings: string[];
}

export function planPools(
  cfg: Config,
  geometry: TileGeometry,
  streams: number,
  extBytes: number,
  opts: { storing: boolean; asyncCodec: boolean },
): PoolPlan {
  const poolBytes = cfg.pipeline.block_pool_mib * 1048576;
  const blockBytes = BlockAssembler.bytesPerBlock(geometry, extBytes);
  const maxBlocks = BlockAssembler.capacity(geometry, poolBytes, extBytes);
  const warnings: string[] = [];
  if (opts.storing && maxBlocks < streams + 2) {
    const need = Math.ceil(((streams + 2) * blockBytes) / 1048576);
    warnings.push(
      `pipeline.block_pool_mib ${cfg.pipeline.block_pool_mib} holds ${maxBlocks} z-blocks of ${(blockBytes / 1048576).toFixed(1)} MiB${extBytes > 0 ? " (with the pyramid's half-size sums)" : ''}; ${streams} channel×view streams fill one each, so frames will wait or go unstored while blocks encode: set it to at least ${need}`,
    );
  }
  // Encoded bytes waiting for the disk may reach the block pool's size (the write backlog's limit):
  // a margin below that lets a filling disk raise ENOSPC before the guard stops storing.
  const minFree = cfg.storage.min_free_bytes;
  if (opts.storing && minFree < poolBytes) {
    warnings.push(
      `storage.min_free_bytes ${(minFree / 1e9).toFixed(2)} GB is below what can wait for the disk (pipeline.block_pool_mib, ${(poolBytes / 1e9).toFixed(2)} GB): a disk filling up may fail the store (ENOSPC) before the disk guard stops storing`,
    );
  }
  // Encoded chunks land in slab slots: two blocks' worth (one when the pool holds only two huge
  // blocks). A slot holds a chunk compressed to 60 % of its raw size or better; larger chunks
  // (and the numcodecs path) come back as new arrays. Slots are whole O_DIRECT blocks (see OutputSlab).
  const chunkBytes = chunkBytesOf(geometry);
  const slab = opts.asyncCodec
    ? null
    : { slotBytes: wholeBlocks(chunkBytes * 0.6 + 4096), slots: (maxBlocks >= 3 ? 2 : 1) * geometry.tilesX * geometry.tilesY };
  return { maxBlocks, slab, warnings };
}
