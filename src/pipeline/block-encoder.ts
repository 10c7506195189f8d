/**
 * Encodes one sealed z-block (of any level): every chunk of it in parallel on the workers, each into
 * a slot of the output slab (only the length comes back) or, when it does not fit, as its own array.
 * Returns the chunks in tile order (empty = all fill value, not stored); the caller then reuses the block.
 */
import type { OutputSlab } from './output-slab.js';
import type { WorkerPool } from './worker-pool.js';
import type { ResolvedCodec } from '../../workers/codecs/chunk-codec.js';
import type { TileGeometry } from '../../workers/kernels/tiles.js';

export interface EncodableBlock {
  buffer: SharedArrayBuffer;
  nonZero: SharedArrayBuffer;
  present: number[];
}

export async function encodeBlock(
  b: EncodableBlock,
  geometry: TileGeometry,
  slab: OutputSlab | null,
  workers: WorkerPool,
  codec: ResolvedCodec,
): Promise<Uint8Array[]> {
  const ntiles = geometry.tilesX * geometry.tilesY;
  // All of the block's slots at once (waits while earlier blocks' chunks are still being written).
  const slots = slab ? await slab.acquire(ntiles) : null;
  const jobs: Promise<Uint8Array>[] = [];
  for (let tile = 0; tile < ntiles; tile++) {
    const slot = slots ? slots[tile] : -1;
    const out = slab ? { buffer: slab.buffer, offset: slot * slab.slotBytes, bytes: slab.slotBytes } : null;
    jobs.push(
      workers.encode({ kind: 'encode', block: b.buffer, nonZero: b.nonZero, tile, geometry, present: b.present, codec, out }).then(
        (r) => {
          if (typeof r === 'number' && slab && r > 0) return slab.view(slot, r);
          if (slab) slab.release(slot); // empty, or too big for the slot (returned as its own array)
          return typeof r === 'number' ? new Uint8Array(0) : r;
        },
        (e: unknown) => {
          if (slab) slab.release(slot);
          throw e;
        },
      ),
    );
  }
  const settled = await Promise.allSettled(jobs);
  const failed = settled.find((x) => x.status === 'rejected');
  const res = settled.map((x) => (x.status === 'fulfilled' ? x.value : new Uint8Array(0)));
  if (failed) {
    for (const r of res) slab?.releaseView(r);
    throw (failed as PromiseRejectedResult).reason;
  }
  return res;
}
