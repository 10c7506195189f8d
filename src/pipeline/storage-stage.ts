/**
 * Storage of one acquisition: the stores (on the buffers of storage-buffers.ts), where each frame's
 * plane goes (or why it is not stored), sealed blocks to encode and hand to the store, and partial
 * shards flushed once their stream has moved to the next timepoint. Storage is switched off here,
 * loudly, on a store failure or by the disk guard; the frames not stored are counted by reason.
 */
import type { Config } from '../config/config.js';
import type { FrameMeta, RingHeader } from '../ingest/ring-layout.js';
import type { BlockAssembler, ZBlock } from './block-assembler.js';
import { encodeBlock } from './block-encoder.js';
import type { Counters } from './counters.js';
import type { EventBus, StreamKey } from './events.js';
import type { Inflight } from './inflight.js';
import type { OutputSlab } from './output-slab.js';
import { StorageBuffers } from './storage-buffers.js';
import { LateFrames } from './late-frames.js';
import { isRecoverable, StoreRetry } from './store-retry.js';
import { openAcquisitionStores } from './store-factory.js';
import { PyramidStage } from './pyramid-stage.js';
import { TimepointFlush } from './timepoint-flush.js';
import type { DownsampleMethod } from '../../workers/kernels/pyramid.js';
import type { WorkerPool } from './worker-pool.js';
import type { ArrayLayout } from '../zarr/layout.js';
import { StoreError, type AcquisitionStore } from '../zarr/acquisition-store.js';
import type { ResolvedCodec } from '../../workers/codecs/chunk-codec.js';
import type { TileGeometry } from '../../workers/kernels/tiles.js';

/** Ring backlog below which a frame waits for a free z-block instead of going unstored. */
const WAIT_BACKLOG = 0.5;

export interface PlaneTarget {
  block: ZBlock;
  plane: number;
}

/** Where a frame goes: its plane in a z-block, or the reason it is not stored; 'wait' = offer it again soon. */
export type Placement = { store: PlaneTarget | null; unstored: string | null } | 'wait';

export interface AcquisitionInfo {
  id: number;
  name: string;
  ringPath: string;
  metadata: Record<string, unknown>;
}

export class StorageStage {
  layout: ArrayLayout | null = null;
  stores: AcquisitionStore[] = [];
  disabledReason: string | null = null;
  /** The short code of disabledReason (ENOSPC, EDISKGUARD, ...): the `reason` of unstored frames. */
  disabledCode: string | null = null;
  private readonly buffers: StorageBuffers;
  private pyramid: PyramidStage | null = null;
  private open = false;
  private header: RingHeader | null = null;
  private readonly timepoints = new TimepointFlush({
    begin: (t, _c, view) => this.stores[view].ensureTimepoint(t),
    flush: (t, c, view) => this.flushShards(t, c, view),
  });
  private readonly late = new LateFrames();
  private readonly retry = new StoreRetry(
    () => this.stores,
    () => {
      const code = this.disabledCode;
      if (code !== null && isRecoverable(code))
        this.resume(`storage resumed: writes succeed again after ${code}; frames from now on are stored (new shards)`);
    },
  );

  constructor(
    private readonly cfg: Config,
    private readonly bus: EventBus,
    private readonly workers: WorkerPool,
    readonly codec: ResolvedCodec,
    private readonly counters: Counters,
    private readonly inflight: Inflight,
    private readonly streamKey: (m: { c: number; view: number }) => StreamKey,
    private readonly opts: { overwrite: boolean; append: boolean; assumed?: string[]; onBlockFreed: () => void },
  ) {
    this.buffers = new StorageBuffers(cfg, codec, (b) => this.encode(b));
  }

  private get blocks(): BlockAssembler | null {
    return this.buffers.blocks;
  }

  private get slab(): OutputSlab | null {
    return this.buffers.slab;
  }

  get geometry(): TileGeometry | null {
    return this.blocks?.geometry ?? null;
  }

  /** z-block buffers holding frames or waiting for encoding, over the pool's capacity (0 when not storing). */
  blockPoolInUseRatio(): number {
    return this.blocks ? this.blocks.inUse / this.blocks.capacity : 0;
  }

  /** Encoding or the disk is behind the frames (BlockAssembler.encodesBehind; false when not storing). */
  encodesBehind(): boolean {
    return this.blocks?.encodesBehind() ?? false;
  }

  get writable(): boolean {
    return this.stores.length > 0 && this.stores.every((s) => s.failed === null) && this.disabledReason === null;
  }

  /**
   * At ring attach, before any frame: allocates the storage buffers of the ring's geometry and
   * returns them, to be made resident while the producer is still idle (see prefault.ts).
   */
  prepare(h: RingHeader): SharedArrayBuffer[] {
    return this.open ? [] : this.buffers.prepare(h);
  }

  /** Lays out the acquisition's array and opens its stores (storage off with one line when they cannot be). */
  begin(h: RingHeader, acq: AcquisitionInfo): void {
    this.header = h;
    this.open = true;
    const { layout, plan, warnings } = this.buffers.plan(h);
    this.layout = layout;
    const st = this.cfg.storage;
    for (const msg of warnings) this.bus.emit('log', { level: 'warn', msg });
    this.stores = [];
    this.retry.stop();
    this.disabledReason = null;
    this.disabledCode = null;
    this.pyramid =
      plan && plan.layouts.length > 1
        ? new PyramidStage({
            ...plan,
            method: st.downsample as DownsampleMethod,
            workers: this.workers,
            codec: this.codec,
            slab: this.slab,
            inflight: this.inflight,
            deliver: (level, b, tiles) => this.deliverLevel(level, b, tiles),
            log: (level, msg) => this.bus.emit('log', { level, msg }),
            report: (level, seconds, ok) => this.bus.emit('pyramid-block', { level, seconds, ok }),
          })
        : null;
    if (!st.enabled) return;
    try {
      this.stores = openAcquisitionStores({
        cfg: this.cfg,
        header: h,
        layout,
        levels: plan?.layouts.slice(1) ?? [],
        codec: this.codec,
        name: acq.name,
        id: acq.id,
        ringPath: acq.ringPath,
        metadata: acq.metadata,
        overwrite: this.opts.overwrite,
        append: this.opts.append,
        assumed: this.opts.assumed ?? [],
        onError: (e, frames) => this.failed(e, frames),
        onChunkDone: (chunk) => this.slab?.releaseView(chunk),
        onShard: (file, bytes, sha256) => {
          this.counters.bytesWritten += bytes;
          this.bus.emit('shard-written', { path: file, bytes, sha256 });
        },
        onWriteMode: (direct, msg) => this.bus.emit('log', { level: direct ? 'info' : 'warn', msg }),
      });
    } catch (e) {
      this.stores = [];
      const err = e instanceof StoreError ? e : new StoreError(String(e), 'EUNKNOWN');
      this.disable(err.code, err.message, `storage disabled: ${err.message}`);
    }
  }

  /** Turns storing off (store failure, disk guard): QC and previews go on, frames are counted unstored. */
  disable(code: string, message: string, logLine = message): void {
    if (this.disabledReason !== null) return;
    this.disabledReason = message;
    this.disabledCode = code;
    this.bus.emit('storage-error', { message, code });
    this.bus.emit('log', { level: 'error', msg: logLine });
  }

  /** Storing back on after the disk guard stopped it. */
  resume(message: string): void {
    this.disabledReason = null;
    this.disabledCode = null;
    this.bus.emit('storage-resumed', { message });
    this.bus.emit('log', { level: 'warn', msg: message });
  }

  private failed(e: StoreError, frames: number): void {
    if (frames > 0) this.countUnstored(frames, e.code);
    const retry = isRecoverable(e.code);
    this.disable(
      e.code,
      e.message,
      `storage ${retry ? 'paused' : 'stopped'}: ${e.message}${retry ? '; QC and preview continue, writing is retried every second' : ''}`,
    );
    if (retry) this.retry.start();
  }

  countUnstored(n: number, reason: string): void {
    this.counters.framesUnstored += n;
    this.bus.emit('frames-unstored', { count: n, reason });
  }

  /**
   * Where frame `meta` goes. Encoding momentarily behind (start-up, a burst): the frame waits (in
   * the frame pool, then the ring) for a free z-block; storage is shed only once the ring is half full.
   */
  place(meta: FrameMeta, ringBacklog: number): Placement {
    const h = this.header as RingHeader;
    if (meta.c >= h.channels || meta.z >= h.zPlanes || meta.view >= h.views) return { store: null, unstored: 'index' };
    if (!this.cfg.storage.enabled) return { store: null, unstored: null };
    const st = this.stores[meta.view];
    if (!st || st.failed !== null || this.disabledReason !== null) {
      return { store: null, unstored: !this.open ? 'no-acquisition' : (this.disabledCode ?? 'store-failed') };
    }
    const blocks = this.blocks as BlockAssembler;
    const sk = `${meta.c}/${meta.view}`;
    const zb = Math.floor(meta.z / blocks.geometry.cz);
    if (this.late.isLate(sk, meta.t, meta.z, zb)) return { store: null, unstored: 'late' };
    // Idempotent: a frame offered again after 'wait' is the same t.
    this.timepoints.frame(meta.t, meta.c, meta.view);
    const backlog = this.stores.reduce((sum, x) => sum + x.pendingBytes, 0) > this.cfg.pipeline.block_pool_mib * 1048576;
    const target = backlog ? null : blocks.assign(meta.t, meta.c, meta.z, meta.view, meta.timestampNs);
    if (!backlog) this.late.assigned(sk, meta.t, meta.z, zb, target !== null);
    if (!target && ringBacklog < WAIT_BACKLOG) return 'wait';
    if (!target) {
      // Blocks waiting for output slots held by chunks not yet on disk: the disk is behind.
      return { store: null, unstored: backlog || this.slab?.diskBound ? 'write-backlog' : 'block-pool-full' };
    }
    if (target.block.planesAssigned === 1) this.timepoints.blockOpened(meta.t, meta.c, meta.view);
    return { store: target, unstored: null };
  }

  /** The frame task wrote its plane (or failed: the plane stays fill value). */
  planeDone(target: PlaneTarget, ok: boolean): void {
    if (ok) this.blocks?.copied(target.block);
    else this.blocks?.unassign(target.block, target.plane);
  }

  private flushShards(t: number, c: number, view: number): void {
    const store = this.stores[view];
    // Shards close only once every level of the timepoint is with the store (a shard finished
    // early would be written again, without its first chunks, by a later block).
    if (this.pyramid) this.inflight.track(this.pyramid.closeTimepoint(t, c, view).then(() => store?.flush(t, c)));
    else store?.flush(t, c);
  }

  /** A pyramid level's encoded z-block to its store (its frames are level 0's, counted there). */
  private deliverLevel(level: number, b: { t: number; c: number; view: number; zb: number }, tiles: Uint8Array[]): void {
    const store = this.stores[b.view];
    if (!store) {
      for (const r of tiles) this.slab?.releaseView(r);
      return;
    }
    for (const r of tiles) if (r.length > 0) this.slab?.markWriting(r);
    store.addBlock(
      b.t,
      b.c,
      b.zb,
      tiles.map((r) => (r.length === 0 ? null : r)),
      0,
      level,
    );
  }

  private encode(b: ZBlock): void {
    const l = this.layout as ArrayLayout;
    const planes = b.present.reduce((s, v) => s + v, 0);
    const store = this.stores[b.view];
    const slab = this.slab;
    const blocks = this.blocks as BlockAssembler;
    const reduced = this.pyramid?.reduceFrom(1, {
      t: b.t,
      c: b.c,
      view: b.view,
      zb: b.zb,
      ext: b.ext,
      planes: b.planesExpected,
      present: b.present,
    });
    const done = Promise.all([encodeBlock(b, blocks.geometry, slab, this.workers, this.codec), reduced])
      .then(([res]) => {
        blocks.release(b);
        this.opts.onBlockFreed();
        if (!store) {
          for (const r of res) slab?.releaseView(r);
          return;
        }
        const raw = planes * l.shape[3] * l.shape[4] * l.bytesPerPixel;
        const stored = res.reduce((s, r) => s + r.length, 0);
        this.counters.bytesRawStored += raw;
        // The store returns each slot (onChunkDone) once its chunk is on disk.
        for (const r of res) if (r.length > 0) slab?.markWriting(r);
        store.addBlock(
          b.t,
          b.c,
          b.zb,
          res.map((r) => (r.length === 0 ? null : r)),
          planes,
        );
        this.bus.emit('chunk-stored', {
          stream: this.streamKey(b),
          rawBytes: raw,
          storedBytes: stored,
          frames: planes,
          latencyMs: Date.now() - b.firstTimestampNs / 1e6,
        });
        this.timepoints.blockDelivered(b.t, b.c, b.view);
      })
      .catch((e: unknown) => {
        blocks.release(b);
        this.opts.onBlockFreed();
        this.countUnstored(planes, 'encode-failed');
        this.bus.emit('log', { level: 'error', msg: `encoding block t=${b.t} c=${b.c} z-block=${b.zb} failed: ${(e as Error).message}` });
      });
    this.inflight.track(done);
  }

  /** Seals every open block, waits for their encodes and writes, closes the stores (index, metadata). */
  async end(): Promise<void> {
    this.retry.stop();
    await this.inflight.settle();
    this.blocks?.sealAll();
    await this.inflight.settle();
    await this.pyramid?.closeAll();
    await this.inflight.settle();
    await Promise.all(this.stores.map((st) => st.close()));
    await this.inflight.settle();
    this.open = false;
    this.stores = [];
    this.timepoints.clear();
    this.late.clear();
  }
}
