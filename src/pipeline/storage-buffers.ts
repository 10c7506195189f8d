/**
 * The storage buffers of the ring's geometry: the array layout, the z-block pool and the output
 * slab. They are kept for the next acquisitions of the same geometry (a new acquisition then starts
 * on touched pages instead of faulting in a fresh GiB while the old one waits for garbage
 * collection), and can be allocated whole at ring attach to be made resident ahead (prefault.ts).
 */
import type { Config } from '../config/config.js';
import { bytesPerPixel, type RingHeader } from '../ingest/ring-layout.js';
import { BlockAssembler, type ZBlock } from './block-assembler.js';
import { OutputSlab } from './output-slab.js';
import { planPools } from './pool-plan.js';
import { planArrays } from './store-factory.js';
import type { ResolvedCodec } from '../../workers/codecs/chunk-codec.js';

export class StorageBuffers {
  blocks: BlockAssembler | null = null;
  slab: OutputSlab | null = null;
  private key = '';

  constructor(
    private readonly cfg: Config,
    private readonly codec: ResolvedCodec,
    /** A sealed z-block whose planes have all landed. */
    private readonly onReady: (b: ZBlock) => void,
  ) {}

  /** The array layout and pyramid plan for the ring's geometry, with its buffers (new only for a new geometry). */
  plan(h: RingHeader) {
    const dims = { c: h.channels, z: h.zPlanes, h: h.height, w: h.width };
    const { layout, geometry, plan: planned } = planArrays(this.cfg, this.codec, dims, bytesPerPixel(h.dtype));
    const storing = this.cfg.storage.enabled;
    const plan = storing ? planned : null;
    const extBytes = plan && plan.layouts.length > 1 ? BlockAssembler.extBytesOf(geometry) : 0;
    const pools = planPools(this.cfg, geometry, h.channels * h.views, extBytes, { storing, asyncCodec: this.codec.async });
    const key = JSON.stringify([geometry, h.zPlanes, pools.maxBlocks, extBytes]);
    if (key !== this.key) {
      this.key = key;
      this.blocks = new BlockAssembler(geometry, h.zPlanes, pools.maxBlocks, this.onReady, extBytes);
      this.slab = pools.slab ? new OutputSlab(pools.slab.slotBytes, pools.slab.slots) : null;
    }
    return { layout, plan, warnings: pools.warnings };
  }

  /** Allocates the buffers of the ring's geometry whole and returns them (nothing when not storing). */
  prepare(h: RingHeader): SharedArrayBuffer[] {
    if (!this.cfg.storage.enabled) return [];
    this.plan(h);
    const blocks = this.blocks?.preallocate() ?? [];
    return this.slab ? [...blocks, this.slab.buffer] : blocks;
  }
}
