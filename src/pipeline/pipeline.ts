/**
 * The pipeline of one attached ring: poll -> frame pool -> worker QC + block copy -> z-block encode
 * -> shard store, with every lost frame counted on the event bus. The main thread only moves
 * indices and small results; pixels stay in SharedArrayBuffers.
 */
import path from 'node:path';
import { RingReader } from '../ingest/ring-reader.js';
import { RingFormatError, STATE_ACQUIRING, STATE_FINISHED, bytesPerPixel, type FrameMeta } from '../ingest/ring-layout.js';
import { FramePool } from './frame-pool.js';
import { BlockAssembler, type ZBlock } from './block-assembler.js';
import { Counters } from './counters.js';
import type { FrameRef } from './frame-ref.js';
import type { EventBus, StreamKey } from './events.js';
import type { WorkerPool } from './worker-pool.js';
import type { Config } from '../config/config.js';
import { makeLayout, tilesX, tilesY, type ArrayLayout } from '../zarr/layout.js';
import { AcquisitionStore, StoreError } from '../zarr/acquisition-store.js';
import { chunkCodecMetadata, resolveCodec, wantsPreShuffled, type ResolvedCodec } from '../../workers/codecs/chunk-codec.js';
import { OutputSlab } from './output-slab.js';
import type { TileGeometry } from '../../workers/kernels/tiles.js';
import type { QcParams } from '../../workers/tasks.js';
import { acquisitionName } from './naming.js';
import { diskFree } from '../zarr/disk.js';
import { VERSION } from '../package-info.js';

/**
 * Frame tasks in flight above which QC is sampled (focus and drift skipped): the queue is then
 * longer than the workers clear in a few frame times, and storage must not wait behind QC.
 */
const QC_SAMPLE_INFLIGHT = 8;
/** z-block pool use above which QC is sampled: encodes are behind, give them the workers. */
const QC_SAMPLE_BLOCK_USE = 0.5;

/** Ring fill below which a frame waits in the ring for a free z-block instead of going unstored. */
const RING_WAIT_FILL = 0.5;

export interface PipelineStatus {
  attached: boolean;
  ringPath: string;
  acquisition: { id: number; name: string; storePath: string | null } | null;
  ringFillRatio: number;
  framePoolInUse: number;
  storeWritable: boolean;
}

export class Pipeline {
  readonly counters = new Counters();
  readonly codec: ResolvedCodec;
  reader: RingReader | null = null;
  /** The store of view 0 (what status reports); `stores[view]` holds each view's image. */
  store: AcquisitionStore | null = null;
  stores: AcquisitionStore[] = [];
  layout: ArrayLayout | null = null;
  private pool: FramePool | null = null;
  private blocks: BlockAssembler | null = null;
  private slab: OutputSlab | null = null;
  /** What the z-block pool and the output slab were made for (they are reused while it holds). */
  private buffersKey = '';
  private next = 0;
  private lastCounter = -1;
  private lastSeq = -1;
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly inflight = new Set<Promise<unknown>>();
  private refs: Int32Array = new Int32Array(0);
  private acqId = -1;
  private acqName = '';
  private lastRevalidate = 0;
  private readonly driftRefs = new Map<string, SharedArrayBuffer>();
  private readonly tcOpen = new Map<string, { opened: number; delivered: number; closed: boolean }>();
  private readonly lastT = new Map<string, number>();
  ringFill = 0;
  /** Hook for the preview service: offered every frame; it may `retain` the ref (and release it later). */
  onFrameForPreview: ((ref: FrameRef, meta: FrameMeta, stream: StreamKey) => void) | null = null;
  /** Hook for the preview service: the stack MIP accumulator a frame should add to. */
  mipTarget: ((meta: FrameMeta, stream: StreamKey) => { buffer: SharedArrayBuffer; step: number } | null) | null = null;
  storingDisabledReason: string | null = null;
  /** The short code of storingDisabledReason (ENOSPC, EDISKGUARD, ...): the `reason` of unstored frames. */
  private storingDisabledCode: string | null = null;

  /** Acquisition metadata from the page: kept for the next acquisitions and written into every open store. */
  updateMetadata(patch: Record<string, unknown>): void {
    this.metadataPatch = { ...this.metadataPatch, ...patch };
    for (const st of this.stores) st.updateAttributes(patch);
  }
  metadataPatch: Record<string, unknown> = {};

  constructor(
    private readonly cfg: Config,
    private readonly bus: EventBus,
    private readonly workers: WorkerPool,
    private readonly ringPath: string,
    private readonly opts: { overwrite: boolean; append: boolean },
  ) {
    this.codec = resolveCodec(cfg.storage.codec, cfg.storage.clevel, cfg.storage.blocksize, cfg.storage.checksum);
  }

  streamKey(meta: { c: number; view: number }): StreamKey {
    return {
      camera: this.cfg.camera.name,
      channel: this.cfg.channels[meta.c]?.name ?? `ch${meta.c}`,
      view: String(meta.view),
    };
  }

  get framePool(): FramePool | null {
    return this.pool;
  }

  /** z-block buffers holding frames or waiting for encoding, over the pool's capacity (0 when not storing). */
  blockPoolInUseRatio(): number {
    return this.blocks ? this.blocks.inUse / this.blocks.capacity : 0;
  }

  status(): PipelineStatus {
    return {
      attached: this.reader !== null,
      ringPath: this.ringPath,
      acquisition: this.acqOpen ? { id: this.acqId, name: this.acqName, storePath: this.store?.root ?? null } : null,
      ringFillRatio: this.ringFill,
      framePoolInUse: this.pool?.inUse ?? 0,
      // Idle between acquisitions is ready: the next acquisition opens its store when it starts.
      storeWritable: this.cfg.storage.enabled && this.acqOpen ? this.store !== null && this.store.failed === null && this.storingDisabledReason === null : true,
    };
  }

  /** Attaches to an opened ring and starts polling it. */
  attach(reader: RingReader): void {
    // Acquisition ids and frame numbers belong to a ring: a re-attached (recreated) ring starts afresh.
    this.finishedIds.clear();
    this.acqId = -1;
    this.publishedSeen = 0;
    this.lastRevalidate = Date.now();
    if (this.guardTimer) clearInterval(this.guardTimer);
    this.reader = reader;
    const h = reader.header;
    const frameBytes = h.frameBytes;
    const cap = Math.max(4, Math.min(4096, Math.floor((this.cfg.pipeline.frame_pool_mib * 1048576) / frameBytes)));
    this.pool = new FramePool(cap, frameBytes);
    this.refs = new Int32Array(cap);
    // Joining a running acquisition: its frames that are still in the ring are read, the ones
    // already overwritten are counted as overrun. An idle ring: start with the next frame.
    // A finished acquisition left in the ring (or an idle ring) is not ours: start with the next frame.
    const acq = reader.acquisitionState();
    if (acq.state === STATE_ACQUIRING) {
      this.next = Math.min(acq.firstFrame, reader.writeCount());
      // Frames below this were overwritten before we attached: lost because we started late.
      this.lateBefore = reader.writeCount() - reader.header.slotCount;
    } else {
      this.next = reader.writeCount();
      this.lateBefore = -1;
      if (acq.state === STATE_FINISHED) {
        this.acqId = acq.id;
        this.finishedIds.add(acq.id);
      }
    }
    this.guardTimer = setInterval(() => this.diskGuard(), 1000);
    this.guardTimer.unref();
    this.bus.emit('log', { level: 'info', msg: 'ring attached', fields: { ring: reader.path, width: h.width, height: h.height, dtype: h.dtype, slots: h.slotCount, z_planes: h.zPlanes, channels: h.channels, frame_pool: cap } });
    this.schedule(0);
  }

  private guardTimer: NodeJS.Timeout | null = null;
  private guardStopped = false;

  /**
   * Stops storing, loudly, before the output disk is full (storage.min_free_bytes), and resumes when
   * space is back (5 % above the margin). QC and previews go on; frames not stored are counted.
   */
  diskGuard(): void {
    if (!this.cfg.storage.enabled || !this.acqOpen) return;
    const free = diskFree(this.cfg.storage.out);
    if (free === null) return;
    const min = this.cfg.storage.min_free_bytes;
    if (!this.guardStopped && free < min && this.storingDisabledReason === null) {
      this.guardStopped = true;
      const msg = `disk guard: ${(free / 1e9).toFixed(2)} GB free on the output disk (${this.cfg.storage.out}), below storage.min_free_bytes ${(min / 1e9).toFixed(2)} GB: storing stopped, QC and preview continue`;
      this.storingDisabledReason = msg;
      this.storingDisabledCode = 'EDISKGUARD';
      this.bus.emit('storage-error', { message: msg, code: 'EDISKGUARD' });
      this.bus.emit('log', { level: 'error', msg });
    } else if (this.guardStopped && free > min * 1.05) {
      this.guardStopped = false;
      this.storingDisabledReason = null;
      this.storingDisabledCode = null;
      const msg = `disk guard: ${(free / 1e9).toFixed(2)} GB free again: storing resumed`;
      this.bus.emit('storage-resumed', { message: msg });
      this.bus.emit('log', { level: 'warn', msg });
    }
  }

  private schedule(ms: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => this.pump(), ms);
  }

  private acqOpen = false;

  private startAcquisition(id: number): void {
    const h = (this.reader as RingReader).header;
    this.acqId = id;
    this.acqOpen = true;
    this.counters.reset();
    this.acqName = acquisitionName(this.cfg.storage.name, id, this.metadataPatch);
    this.counters.startedAt = Date.now();
    const bpp = bytesPerPixel(h.dtype);
    this.layout = makeLayout(
      { t: 1, c: h.channels, z: h.zPlanes, h: h.height, w: h.width },
      this.cfg.storage.chunk, this.cfg.storage.sharding ? this.cfg.storage.shard : null, bpp,
    );
    const [, , cz, cy, cx] = this.layout.chunk;
    const geometry: TileGeometry = {
      width: h.width, height: h.height, bytesPerPixel: bpp, cz, cy, cx, tilesX: tilesX(this.layout), tilesY: tilesY(this.layout),
      shuffled: bpp === 2 && wantsPreShuffled(this.codec, cz * cy * cx * bpp, bpp),
    };
    const maxBlocks = BlockAssembler.capacity(geometry, this.cfg.pipeline.block_pool_mib * 1048576);
    const streams = h.channels * h.views;
    if (this.cfg.storage.enabled && maxBlocks < streams + 2) {
      const need = Math.ceil(((streams + 2) * BlockAssembler.bytesPerBlock(geometry)) / 1048576);
      this.bus.emit('log', { level: 'warn', msg: `pipeline.block_pool_mib ${this.cfg.pipeline.block_pool_mib} holds ${maxBlocks} z-blocks of ${(BlockAssembler.bytesPerBlock(geometry) / 1048576).toFixed(1)} MiB; ${streams} channel×view streams fill one each, so frames will wait or go unstored while blocks encode: set it to at least ${need}` });
    }
    const buffersKey = JSON.stringify([geometry, h.zPlanes, maxBlocks]);
    if (buffersKey !== this.buffersKey) {
      // Kept for the next acquisitions of this ring (all released when an acquisition ends): a new
      // acquisition then starts on touched pages instead of faulting in a fresh GiB while the old
      // one waits for garbage collection.
      this.buffersKey = buffersKey;
      this.blocks = new BlockAssembler(geometry, h.zPlanes, maxBlocks, (b) => this.encodeBlock(b));
      // Encoded chunks land in slab slots: two blocks' worth (one when the pool holds only two huge
      // blocks, to keep memory near the configured pool). A slot holds a chunk compressed to 60 % of
      // its raw size or better; larger chunks (and the numcodecs path) come back as new arrays.
      const chunkBytes = cz * cy * cx * bpp;
      this.slab = this.codec.effective.startsWith('numcodecs-') ? null
        : new OutputSlab(Math.ceil((chunkBytes * 0.6 + 4096) / 64) * 64, (maxBlocks >= 3 ? 2 : 1) * geometry.tilesX * geometry.tilesY);
    }
    this.store = null;
    this.stores = [];
    this.storingDisabledReason = null;
    this.storingDisabledCode = null;
    this.guardStopped = false;
    if (this.cfg.storage.enabled) {
      try {
        // One OME-Zarr image per view: <name>.ome.zarr, or <name>_view<k>.ome.zarr when the ring has several.
        for (let v = 0; v < h.views; v++) {
          const root = path.resolve(this.cfg.storage.out, `${this.acqName}${h.views > 1 ? `_view${v}` : ''}.ome.zarr`);
          this.stores.push(AcquisitionStore.create({
          root, layout: this.layout, dtype: h.dtype,
          innerCodecs: chunkCodecMetadata(this.codec, bpp, this.layout.chunk[2] * this.layout.chunk[3] * this.layout.chunk[4] * bpp),
          image: {
            name: this.acqName,
            channels: Array.from({ length: h.channels }, (_, c) => ({
              name: this.cfg.channels[c]?.name ?? `ch${c}`, color: this.cfg.channels[c]?.color ?? 'FFFFFF',
            })),
            pixelSizeUm: this.cfg.pixel_size_um,
            timeStepS: this.cfg.time_step_s,
            window: { min: 0, max: this.cfg.camera.saturation_level, start: this.cfg.camera.offset, end: Math.min(this.cfg.camera.saturation_level, this.cfg.camera.offset * 20) },
            acquisition: {
              ...this.cfg.metadata, ...this.metadataPatch, start_time: new Date().toISOString(), acquisition_id: id,
              camera: this.cfg.camera, ring: this.ringPath, spimstream_version: VERSION, view: v, views: h.views,
              codec: { requested: this.codec.requested, effective: this.codec.effective, implementation: this.codec.implementation },
            },
          },
          overwrite: this.opts.overwrite, append: this.opts.append,
          onError: (e, frames) => this.storageFailed(e, frames),
          onChunkDone: (chunk) => this.slab?.releaseView(chunk),
          onShard: (file, bytes, sha256) => {
            this.counters.bytesWritten += bytes;
            this.bus.emit('shard-written', { path: file, bytes, sha256 });
          },
          }));
        }
        this.store = this.stores[0];
      } catch (e) {
        this.stores = [];
        const err = e instanceof StoreError ? e : new StoreError(String(e), 'EUNKNOWN');
        this.storingDisabledReason = err.message;
        this.storingDisabledCode = err.code;
        this.bus.emit('storage-error', { message: err.message, code: err.code });
        this.bus.emit('log', { level: 'error', msg: `storage disabled: ${err.message}` });
      }
    }
    this.bus.emit('acquisition-started', {
      id, name: this.acqName, storePath: this.store?.root ?? null,
      geometry: { width: h.width, height: h.height, dtype: h.dtype, z_planes: h.zPlanes, channels: h.channels, codec: this.codec.effective, chunk: this.layout.chunk, shard: this.layout.shard },
    });
  }

  private storageFailed(e: StoreError, frames: number): void {
    if (frames > 0) this.countUnstored(frames, e.code);
    if (this.storingDisabledReason === null) {
      this.storingDisabledReason = e.message;
      this.storingDisabledCode = e.code;
      this.bus.emit('storage-error', { message: e.message, code: e.code });
      this.bus.emit('log', { level: 'error', msg: `storage stopped: ${e.message}` });
    }
  }

  private countUnstored(n: number, reason: string): void {
    this.counters.framesUnstored += n;
    this.bus.emit('frames-unstored', { count: n, reason });
  }

  /** Ring frames below this were overwritten before this sidecar attached (overrun, but "late"). */
  private lateBefore = -1;

  private lose(reason: 'overrun' | 'gap' | 'torn', count: number, atSeq: number): void {
    if (count <= 0) return;
    if (reason === 'overrun' && atSeq < this.lateBefore) {
      const late = Math.min(count, this.lateBefore - atSeq);
      this.counters.framesOverrun += late;
      this.bus.emit('frames-lost', { reason, count: late, atSeq, late: true });
      count -= late;
      atSeq += late;
      if (count <= 0) return;
    }
    if (reason === 'overrun') this.counters.framesOverrun += count;
    else if (reason === 'torn') this.counters.framesTorn += count;
    else this.counters.framesGap += count;
    this.bus.emit('frames-lost', { reason, count, atSeq });
  }

  /** One polling tick: acquisition boundaries, then every available frame (bounded per tick). */
  private pump(): void {
    const reader = this.reader;
    if (!reader || this.stopping) return;
    try {
      const now = Date.now();
      if (now - this.lastRevalidate > 1000) {
        this.lastRevalidate = now;
        reader.revalidate();
      }
      // write_count first, then the acquisition: the producer writes first_frame, id and state
      // before an acquisition's first frame, so no frame below `wc` is read with a stale state.
      const wc = reader.writeCount();
      const acq = reader.acquisitionState();
      const isNew = acq.id > 0 && acq.id !== this.acqId;
      if (isNew && this.next < Math.min(wc, acq.firstFrame)) {
        // Frames published before the new acquisition began belong to the open one (or, when none
        // is open, to no acquisition): read them first, so none lands in the new store.
        const progressed = this.readAvailable(Math.min(wc, acq.firstFrame), 20);
        this.schedule(progressed ? 0 : 1);
        return;
      }
      if (this.acqOpen && acq.id !== this.acqId) {
        // New acquisition: close the previous one first, then come back.
        void this.finishAcquisition().then(() => this.schedule(0));
        return;
      }
      if (!this.acqOpen && (isNew || (!this.finishedIds.has(acq.id) && wc > this.next))) {
        this.startAcquisition(acq.id);
      }
      const progressed = this.readAvailable(wc, 20);
      if (this.acqOpen && this.next >= reader.writeCount() && acq.state === STATE_FINISHED) {
        // The producer says the acquisition is over and we have everything: close it, wait for the next.
        this.finishedIds.add(this.acqId);
        void this.finishAcquisition();
      }
      this.schedule(progressed ? 0 : 1);
    } catch (e) {
      this.onRingError(e);
    }
  }

  /** The highest write_count seen: frames below it that were never read are lost on a detach. */
  private publishedSeen = 0;

  private onRingError(e: unknown): void {
    if (!(e instanceof RingFormatError)) throw e;
    // Published but unreadable now (the ring was cut or changed under them): lost, counted as torn.
    try {
      if (this.reader) this.publishedSeen = Math.max(this.publishedSeen, this.reader.writeCount());
    } catch {
      // the header itself is gone: what was seen before is all we know
    }
    this.lose('torn', this.publishedSeen - this.next, this.next);
    this.next = Math.max(this.next, this.publishedSeen);
    this.bus.emit('log', { level: 'error', msg: `${e.message}; detaching (stored data is kept, acquisition finalized)` });
    this.bus.emit('storage-error', { message: e.message, code: 'ERING' });
    const old = this.reader;
    this.reader = null;
    // The app waits for a valid ring at the path again once this acquisition is finalized.
    void this.finishAcquisition().finally(() => {
      try { old?.close(); } catch { /* already gone */ }
      if (!this.stopping) this.bus.emit('ring-detached', { reason: e.message });
    });
  }

  /** Reads frames up to `limit` (exclusive) for at most `budgetMs`; true when any frame was read. */
  private readAvailable(limit: number, budgetMs: number): boolean {
    const reader = this.reader as RingReader;
    const slots = reader.header.slotCount;
    const meta: FrameMeta = { seq: 0, cameraCounter: 0, timestampNs: 0, t: 0, c: 0, z: 0, view: 0, flags: 0 };
    const deadline = performance.now() + budgetMs;
    let wc = Math.min(limit, reader.writeCount());
    this.publishedSeen = Math.max(this.publishedSeen, wc);
    let progressed = false;
    while (this.next < wc && performance.now() < deadline) {
      const live = reader.writeCount();
      this.publishedSeen = Math.max(this.publishedSeen, live);
      if (live - this.next > slots) {
        const lostTo = live - slots;
        this.lose('overrun', lostTo - this.next, this.next);
        this.next = lostTo;
        if (this.next >= wc) break;
      }
      const r = reader.readHeader(this.next, meta);
      if (r === 'not-yet') break;
      if (r === 'overwritten') {
        this.lose('overrun', 1, this.next);
        this.next++;
        continue;
      }
      const place = this.placeFrame(meta);
      if (!place) break; // every buffer busy: the ring absorbs the backlog or overruns (counted)
      let whole: boolean;
      try {
        whole = reader.readPixels(this.next, new Uint8Array(place.ref.buffer, place.ref.offset, reader.header.frameBytes));
      } catch (e) {
        // The file shrank under the copy: the frame is discarded and counted, then we detach.
        place.undo();
        this.lose('torn', 1, this.next);
        this.next++;
        throw e;
      }
      if (!whole) {
        place.undo();
        this.lose('torn', 1, this.next);
        this.next++;
        continue;
      }
      this.next++;
      progressed = true;
      this.onFrame(place.ref, { ...meta }, place.unstored, place.store);
      if (this.next >= wc) {
        wc = Math.min(limit, reader.writeCount());
        this.publishedSeen = Math.max(this.publishedSeen, wc);
      }
    }
    this.ringFill = Math.min(1, Math.max(0, reader.writeCount() - this.next) / slots);
    return progressed;
  }

  private readonly finishedIds = new Set<number>();

  /** Fraction of the ring published but not yet read. */
  private ringBacklog(): number {
    const reader = this.reader as RingReader;
    return Math.max(0, reader.writeCount() - this.next) / reader.header.slotCount;
  }

  private poolRef(slot: number): FrameRef {
    const pool = this.pool as FramePool;
    return {
      buffer: pool.buffer, offset: slot * pool.frameBytes,
      retain: () => { this.refs[slot]++; },
      release: () => { if (--this.refs[slot] === 0) pool.release(slot); },
    };
  }

  /**
   * Reserves a frame-pool slot for frame `meta` (what it is read into) and, when it is stored, its
   * plane in a z-block (the frame task writes it there). Returns null when no slot is free (the frame
   * stays in the ring for now).
   */
  private placeFrame(meta: FrameMeta): { ref: FrameRef; store: { block: ZBlock; plane: number } | null; unstored: string | null; undo(): void } | null {
    const h = (this.reader as RingReader).header;
    const slot = (this.pool as FramePool).acquire();
    if (slot < 0) return null;
    this.refs[slot] = 1;
    const ref = this.poolRef(slot);
    let unstored: string | null = null;
    let store: { block: ZBlock; plane: number } | null = null;
    if (meta.c >= h.channels || meta.z >= h.zPlanes || meta.view >= h.views) unstored = 'index';
    else if (this.cfg.storage.enabled) {
      const st = this.stores[meta.view];
      if (st && st.failed === null && this.storingDisabledReason === null) {
        this.trackTimepoint(meta);
        const backlog = this.stores.reduce((sum, x) => sum + x.pendingBytes, 0) > this.cfg.pipeline.block_pool_mib * 1048576;
        store = backlog ? null : (this.blocks as BlockAssembler).assign(meta.t, meta.c, meta.z, meta.view, meta.timestampNs);
        if (store) {
          const tc = this.tcOpen.get(`${meta.t}/${meta.c}/${meta.view}`);
          if (store.block.planesAssigned === 1 && tc) tc.opened++;
        } else if (this.ringBacklog() < RING_WAIT_FILL) {
          // Encoding is momentarily behind (start-up, a burst): the ring is the first buffer. Leave
          // the frame there until a block frees; storage is shed only once the ring is half full.
          ref.release();
          return null;
        } else {
          // Blocks waiting for output slots held by chunks not yet on disk: the disk is behind.
          unstored = backlog || this.slab?.diskBound ? 'write-backlog' : 'block-pool-full';
        }
      } else unstored = !this.acqOpen ? 'no-acquisition' : this.storingDisabledCode ?? 'store-failed';
    }
    const target = store;
    return {
      ref, store, unstored,
      undo: () => {
        ref.release();
        if (target) (this.blocks as BlockAssembler).unassign(target.block, target.plane);
      },
    };
  }

  /** A frame is in memory (`ref` holds one reference): account for it, run QC, offer it to the preview. */
  private onFrame(ref: FrameRef, meta: FrameMeta, unstored: string | null, store: { block: ZBlock; plane: number } | null): void {
    const c = this.counters;
    const h = (this.reader as RingReader).header;
    c.framesReceived++;
    c.bytesReceived += h.frameBytes;
    if (this.lastSeq >= 0) this.lose('gap', meta.cameraCounter - this.lastCounter - (meta.seq - this.lastSeq), meta.seq);
    this.lastSeq = meta.seq;
    this.lastCounter = meta.cameraCounter;
    const stream = this.streamKey(meta);
    this.bus.emit('frame-received', { meta, bytes: h.frameBytes, stream });
    if (unstored === 'index') {
      this.bus.emit('log', { level: 'warn', msg: `frame ${meta.seq} has c=${meta.c} z=${meta.z} view=${meta.view}, outside the ring's declared channels=${h.channels} z_planes=${h.zPlanes} views=${h.views}: not stored` });
    }
    if (unstored) this.countUnstored(1, unstored);
    // Drift is costly (FFT + upsampled DFT): by default only on the central plane of each stack.
    const refKey = `${stream.view}/${meta.c}/${meta.z}`;
    const doDrift = this.cfg.qc.drift_planes === 'all' || meta.z === Math.floor(h.zPlanes / 2);
    const mip = this.mipTarget ? this.mipTarget(meta, stream) : null;
    if (this.onFrameForPreview) this.onFrameForPreview(ref, meta, stream);
    const sampled = this.frameTasks >= QC_SAMPLE_INFLIGHT || this.blockPoolInUseRatio() > QC_SAMPLE_BLOCK_USE;
    if (sampled) c.qcSampled++;
    this.frameTasks++;
    const task = this.workers.frame({
      sampled,
      kind: 'frame', frames: ref.buffer, frameOffset: ref.offset,
      width: h.width, height: h.height, bytesPerPixel: bytesPerPixel(h.dtype),
      saturationLevel: Math.min(this.cfg.camera.saturation_level, (1 << h.bitDepth) - 1), offset: this.cfg.camera.offset,
      qc: this.qcParams(), drift: doDrift, driftReference: doDrift ? this.driftRefs.get(refKey) ?? null : null,
      driftRefreshReference: this.cfg.qc.drift_reference === 'previous',
      mip: mip?.buffer ?? null, mipStep: mip?.step ?? 1,
      store: store ? { block: store.block.buffer, nonZero: store.block.nonZero, z: store.plane, geometry: (this.blocks as BlockAssembler).geometry } : null,
    }).then((r) => {
      this.frameTasks--;
      ref.release();
      if (store) this.blocks?.copied(store.block);
      if (r.newReference && (!this.driftRefs.has(refKey) || this.cfg.qc.drift_reference === 'previous')) this.driftRefs.set(refKey, r.newReference);
      const latencyMs = Date.now() - meta.timestampNs / 1e6;
      this.bus.emit('frame-qc', { meta, stream, qc: r.qc, latencyMs, processingSeconds: r.seconds });
    }, (e: unknown) => {
      this.frameTasks--;
      ref.release();
      if (store) this.blocks?.unassign(store.block, store.plane);
      this.bus.emit('log', { level: 'error', msg: `frame ${meta.seq}: worker failed: ${(e as Error).message}` });
    });
    this.track(task);
  }

  /** Frame tasks sent to the workers and not yet back. */
  private frameTasks = 0;
  private qcCache: QcParams | null = null;
  qcParams(): QcParams {
    this.qcCache ??= qcParamsFromConfig(this.cfg);
    return this.qcCache;
  }

  /** Keeps per (t, c, view) counts so partial shards are flushed once a stream has moved on. */
  private trackTimepoint(meta: FrameMeta): void {
    const sk = `${meta.c}/${meta.view}`;
    const prev = this.lastT.get(sk);
    if (prev !== meta.t) {
      this.stores[meta.view].ensureTimepoint(meta.t);
      if (prev !== undefined) {
        const old = this.tcOpen.get(`${prev}/${meta.c}/${meta.view}`);
        if (old) {
          old.closed = true;
          this.maybeFlush(prev, meta.c, meta.view);
        }
      }
      this.lastT.set(sk, meta.t);
      if (!this.tcOpen.has(`${meta.t}/${meta.c}/${meta.view}`)) this.tcOpen.set(`${meta.t}/${meta.c}/${meta.view}`, { opened: 0, delivered: 0, closed: false });
    }
  }

  private maybeFlush(t: number, c: number, view: number): void {
    const k = `${t}/${c}/${view}`;
    const tc = this.tcOpen.get(k);
    if (tc && tc.closed && tc.delivered >= tc.opened) {
      this.tcOpen.delete(k);
      this.stores[view]?.flush(t, c);
    }
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private encodeBlock(b: ZBlock): void {
    const l = this.layout as ArrayLayout;
    const geometry = (this.blocks as BlockAssembler).geometry;
    const ntiles = geometry.tilesX * geometry.tilesY;
    const planes = b.present.reduce((s, v) => s + v, 0);
    const store = this.stores[b.view];
    const slab = this.slab;
    const done = (async () => {
      // All of the block's slots at once (waits while earlier blocks' chunks are still being written).
      const slots = slab ? await slab.acquire(ntiles) : null;
      const jobs: Promise<Uint8Array>[] = [];
      for (let tile = 0; tile < ntiles; tile++) {
        const slot = slots ? slots[tile] : -1;
        const out = slab ? { buffer: slab.buffer, offset: slot * slab.slotBytes, bytes: slab.slotBytes } : null;
        jobs.push(this.workers.encode({ kind: 'encode', block: b.buffer, nonZero: b.nonZero, tile, geometry, present: b.present, codec: this.codec, out }).then((r) => {
          if (typeof r === 'number' && slab && r > 0) return slab.view(slot, r);
          if (slab) slab.release(slot); // empty, or too big for the slot (returned as its own array)
          return typeof r === 'number' ? new Uint8Array(0) : r;
        }, (e: unknown) => {
          if (slab) slab.release(slot);
          throw e;
        }));
      }
      const settled = await Promise.allSettled(jobs);
      this.blocks?.release(b);
      const failed = settled.find((x) => x.status === 'rejected');
      const res = settled.map((x) => (x.status === 'fulfilled' ? x.value : new Uint8Array(0)));
      if (failed || !store) {
        for (const r of res) slab?.releaseView(r);
        if (failed) throw (failed as PromiseRejectedResult).reason;
        return;
      }
      const raw = planes * l.shape[3] * l.shape[4] * l.bytesPerPixel;
      const stored = res.reduce((s, r) => s + r.length, 0);
      this.counters.bytesRawStored += raw;
      // The store returns each slot (onChunkDone) once its chunk is on disk.
      for (const r of res) if (r.length > 0) slab?.markWriting(r);
      store.addBlock(b.t, b.c, b.zb, res.map((r) => (r.length === 0 ? null : r)), planes);
      this.bus.emit('chunk-stored', { stream: this.streamKey(b), rawBytes: raw, storedBytes: stored, frames: planes, latencyMs: Date.now() - b.firstTimestampNs / 1e6 });
      const k = `${b.t}/${b.c}/${b.view}`;
      const tc = this.tcOpen.get(k);
      if (tc) {
        tc.delivered++;
        this.maybeFlush(b.t, b.c, b.view);
      }
    })().catch((e: unknown) => {
      this.countUnstored(planes, 'encode-failed');
      this.bus.emit('log', { level: 'error', msg: `encoding block t=${b.t} c=${b.c} z-block=${b.zb} failed: ${(e as Error).message}` });
    });
    this.track(done);
  }

  /** Waits until every frame task, encode and write in flight has finished. */
  private async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Ends the current acquisition: seal blocks, encode, flush shards, finalize metadata, emit summary. */
  private finishing: Promise<void> | null = null;
  finishAcquisition(): Promise<void> {
    if (this.finishing) return this.finishing;
    if (!this.acqOpen) return this.settle();
    this.finishing = (async () => {
      await this.settle();
      this.blocks?.sealAll();
      await this.settle();
      await Promise.all(this.stores.map((st) => st.close()));
      await this.settle();
      {
        const c = this.counters;
        const summary = {
          framesReceived: c.framesReceived, framesOverrun: c.framesOverrun, framesGap: c.framesGap, framesTorn: c.framesTorn, qcSampled: c.qcSampled,
          framesUnstored: c.framesUnstored, bytesReceived: c.bytesReceived, bytesWritten: c.bytesWritten,
          compressionRatio: c.bytesWritten > 0 ? c.bytesRawStored / c.bytesWritten : 0,
          durationSeconds: (Date.now() - c.startedAt) / 1000,
        };
        this.bus.emit('acquisition-finished', { id: this.acqId, name: this.acqName, storePath: this.store?.root ?? null, summary });
      }
      this.acqOpen = false;
      this.store = null;
      this.stores = [];
      this.tcOpen.clear();
      this.lastT.clear();
      this.driftRefs.clear();
    })().finally(() => {
      this.finishing = null;
    });
    return this.finishing;
  }

  /**
   * Stops intake and flushes everything buffered. Frames the producer had published when stop was
   * called are still read (or counted as overrun if the ring overwrote them meanwhile).
   */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const reader = this.reader;
    if (reader && !this.stopping) {
      this.stopping = true;
      try {
        const target = reader.writeCount();
        const until = Date.now() + 10_000;
        while (this.reader && this.next < target && Date.now() < until) {
          if (!this.readAvailable(target, 50)) await new Promise((r) => setTimeout(r, 2));
        }
      } catch (e) {
        this.onRingError(e);
      }
    }
    this.stopping = true;
    if (this.guardTimer) clearInterval(this.guardTimer);
    await this.finishAcquisition();
    this.reader?.close();
    this.reader = null;
  }
}

/** The worker's QC parameters from the configuration (also used by the QC accuracy tests). */
export function qcParamsFromConfig(cfg: Config): QcParams {
  const q = cfg.qc;
  return {
    checksum: q.checksum, focus: q.focus, dctsPsfPx: q.dcts_psf_px, roi: q.roi, focusBin: q.focus_bin, driftWindow: q.drift_window,
    driftBin: q.drift_bin, driftUpsample: q.drift_upsample, driftMinConfidence: q.drift_min_confidence,
    gain: cfg.camera.gain_e_per_adu, readNoise: cfg.camera.read_noise_adu,
  };
}
