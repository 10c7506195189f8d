/**
 * The pipeline of one ring, composed of its stages: intake (the ingest thread's frames, in ring
 * order) → per frame: storage placement (storage-stage) and the worker frame task (qc-dispatch) →
 * sealed z-blocks encoded and stored. This file owns the acquisition life cycle (start, finish,
 * summary) and the loss accounting; every loss is counted on the event bus with its reason.
 */
import type { Config } from '../config/config.js';
import type { IngestStartPosition, LossReason } from '../ingest/ingest-protocol.js';
import type { FrameMeta, RingHeader } from '../ingest/ring-layout.js';
import type { SlotPool } from '../ingest/slot-pool.js';
import { Counters } from './counters.js';
import { DiskGuard } from './disk-guard.js';
import type { EventBus, StreamKey } from './events.js';
import type { FrameRef } from './frame-ref.js';
import { Inflight } from './inflight.js';
import { Intake, type IntakeSink } from './intake.js';
import { acquisitionName } from './naming.js';
import { markSeen } from '../ingest/ring-seen.js';
import { type Prefault, prefault } from './prefault.js';
import { QcDispatch } from './qc-dispatch.js';
import type { PreviewPort } from './preview-port.js';
import { StorageStage } from './storage-stage.js';
import type { WorkerPool } from './worker-pool.js';
import type { AcquisitionStore } from '../zarr/acquisition-store.js';
import type { ArrayLayout } from '../zarr/layout.js';
import { resolveCodec, type ResolvedCodec } from '../../workers/codecs/chunk-codec.js';

export { qcParamsFromConfig } from './qc-dispatch.js';

export interface PipelineStatus {
  attached: boolean;
  ringPath: string;
  acquisition: { id: number; name: string; storePath: string | null } | null;
  ringFillRatio: number;
  framePoolInUse: number;
  storeWritable: boolean;
}

export class Pipeline implements IntakeSink {
  readonly counters = new Counters();
  readonly codec: ResolvedCodec;
  /** The attached ring's header (null before the first attach). */
  header: RingHeader | null = null;
  metadataPatch: Record<string, unknown> = {};
  private readonly inflight = new Inflight();
  private readonly intake = new Intake(this);
  private readonly storage: StorageStage;
  private readonly qc: QcDispatch;
  private readonly guard: DiskGuard;
  private acqOpen = false;
  private acqId = -1;
  private acqName = '';
  private stopping = false;
  private finishing: Promise<void> | null = null;
  /** Buffers being made resident since the ring's attach; stopped when an acquisition starts. */
  private prefaulting: Prefault | null = null;

  constructor(
    private readonly cfg: Config,
    private readonly bus: EventBus,
    workers: WorkerPool,
    readonly ringPath: string,
    opts: { overwrite: boolean; append: boolean; assumed?: string[] },
    /** Where frames are offered for previews (null: none are made). */
    private readonly preview: PreviewPort | null = null,
  ) {
    bus.on('preview-throttled', () => {
      this.counters.previewsThrottled++;
    });
    this.codec = resolveCodec(cfg.storage.codec, cfg.storage.clevel, cfg.storage.blocksize, cfg.storage.checksum);
    this.storage = new StorageStage(cfg, bus, workers, this.codec, this.counters, this.inflight, (m) => this.streamKey(m), {
      ...opts,
      onBlockFreed: () => this.intake.kick(),
    });
    this.qc = new QcDispatch(cfg, bus, workers, this.counters, this.inflight, {
      encodesBehind: () => this.storage.encodesBehind(),
      framePoolSlots: () => this.intake.pool?.capacity ?? 0,
      geometry: () => this.storage.geometry,
      planeDone: (t, ok) => this.storage.planeDone(t, ok),
      mipTarget: (meta, stream) => (this.preview && this.header ? this.preview.mipTarget(meta, stream, this.header) : null),
      volumeTarget: (meta, stream, behind) =>
        this.preview && this.header ? this.preview.volumeTarget(meta, stream, this.header, behind) : null,
    });
    this.guard = new DiskGuard(cfg, {
      active: () => this.acqOpen,
      disabledReason: () => this.storage.disabledReason,
      disable: (code, msg) => this.storage.disable(code, msg),
      resume: (msg) => this.storage.resume(msg),
    });
  }

  /** Acquisition metadata from the page: kept for the next acquisitions and written into every open store (settles when on disk). */
  async updateMetadata(patch: Record<string, unknown>): Promise<void> {
    this.metadataPatch = { ...this.metadataPatch, ...patch };
    await Promise.all(this.storage.stores.map((st) => st.updateAttributes(patch)));
  }

  streamKey(meta: { c: number; view: number }): StreamKey {
    return { camera: this.cfg.camera.name, channel: this.cfg.channels[meta.c]?.name ?? `ch${meta.c}`, view: String(meta.view) };
  }

  /** The store of view 0 (what status reports); `stores[view]` holds each view's image. */
  get store(): AcquisitionStore | null {
    return this.storage.stores[0] ?? null;
  }

  get stores(): AcquisitionStore[] {
    return this.storage.stores;
  }

  get layout(): ArrayLayout | null {
    return this.storage.layout;
  }

  get framePool(): SlotPool | null {
    return this.intake.pool;
  }

  /** The workers are behind (QC sampled): what previews yield to. */
  get workersBehind(): boolean {
    return this.qc.behind();
  }

  get ringFill(): number {
    return this.intake.ringFill();
  }

  get storingDisabledReason(): string | null {
    return this.storage.disabledReason;
  }

  /** The longest pause between two ring polls since the last call, ms (the ingest thread's health). */
  takeMaxPollGapMs(): number {
    return this.intake.takeMaxPollGapMs();
  }

  blockPoolInUseRatio(): number {
    return this.storage.blockPoolInUseRatio();
  }

  status(): PipelineStatus {
    return {
      attached: this.intake.attached,
      ringPath: this.ringPath,
      acquisition: this.acqOpen ? { id: this.acqId, name: this.acqName, storePath: this.store?.root ?? null } : null,
      ringFillRatio: this.ringFill,
      framePoolInUse: this.framePool?.inUse ?? 0,
      // Idle between acquisitions is ready: the next acquisition opens its store when it starts.
      storeWritable: this.cfg.storage.enabled && this.acqOpen ? this.storage.writable : true,
    };
  }

  /** Starts ingest on the ring at ringPath, whose header was just validated, open as `fd` (reading from `position`). */
  attach(header: RingHeader, position: IngestStartPosition, fd: number): void {
    this.header = header;
    const cap = Math.max(4, Math.min(4096, Math.floor((this.cfg.pipeline.frame_pool_mib * 1048576) / header.frameBytes)));
    this.intake.attach(this.ringPath, header, position, cap, fd);
    this.guard.start();
    this.prefaultBuffers(header);
  }

  /** The frame pool and the storage buffers made resident while the producer is idle (prefault.ts). */
  private prefaultBuffers(header: RingHeader): void {
    const buffers = [...(this.framePool ? [this.framePool.frames] : []), ...this.storage.prepare(header)];
    this.prefaulting?.stop();
    this.prefaulting = prefault(buffers);
    this.prefaulting.done.then(
      (r) =>
        this.bus.emit('log', {
          level: 'info',
          msg: r.stopped ? 'buffers partly resident when the acquisition started' : 'buffers resident',
          fields: { bytes: r.bytes, of: r.total, seconds: Number(r.seconds.toFixed(2)) },
        }),
      (e: unknown) =>
        this.bus.emit('log', { level: 'warn', msg: `buffers not made resident ahead (${String(e)}): the first frames fault them in` }),
    );
  }

  // ---- IntakeSink: what the ingest thread reports, in ring order ----

  attached(h: RingHeader, priority: number | null): void {
    this.bus.emit('log', {
      level: 'info',
      msg: 'ring attached',
      fields: {
        ring: this.ringPath,
        width: h.width,
        height: h.height,
        dtype: h.dtype,
        slots: h.slotCount,
        z_planes: h.zPlanes,
        channels: h.channels,
        frame_pool: this.framePool?.capacity ?? 0,
        ingest_nice: priority ?? 'unchanged (no CAP_SYS_NICE)',
      },
    });
  }

  acquisitionStart(id: number): void {
    const h = this.header as RingHeader;
    this.prefaulting?.stop();
    this.acqId = id;
    this.acqOpen = true;
    this.counters.reset();
    this.acqName = acquisitionName(this.cfg.storage.name, id, this.metadataPatch);
    this.guard.reset();
    this.storage.begin(h, { id, name: this.acqName, ringPath: this.ringPath, metadata: this.metadataPatch });
    const l = this.storage.layout as ArrayLayout;
    this.bus.emit('acquisition-started', {
      id,
      name: this.acqName,
      storePath: this.store?.root ?? null,
      viewStores: this.stores.map((st) => st.root),
      geometry: {
        width: h.width,
        height: h.height,
        dtype: h.dtype,
        z_planes: h.zPlanes,
        channels: h.channels,
        codec: this.codec.effective,
        chunk: l.chunk,
        shard: l.shard,
      },
    });
  }

  /** A deliberate change (laser power, exposure, sample) accepted: QC baselines start again from the next stacks. */
  rebaseline(reason: string): void {
    this.qc.reset();
    this.bus.emit('qc-rebaseline', { reason });
  }

  acquisitionEnd(): Promise<void> {
    // A sidecar attaching later (a restart) does not take this acquisition in again.
    if (this.acqId > 0) markSeen(this.ringPath, this.acqId);
    return this.finishAcquisition();
  }

  frame(ref: FrameRef, meta: FrameMeta, readAtMs: number): boolean {
    const h = this.header as RingHeader;
    const place = this.storage.place(meta, this.ringFill);
    if (place === 'wait') return false;
    const c = this.counters;
    c.framesReceived++;
    c.bytesReceived += h.frameBytes;
    const stream = this.streamKey(meta);
    this.bus.emit('frame-received', { meta, bytes: h.frameBytes, stream, readLagMs: readAtMs - meta.timestampNs / 1e6 });
    if (place.unstored === 'index') {
      this.bus.emit('log', {
        level: 'warn',
        msg: `frame ${meta.seq} has c=${meta.c} z=${meta.z} view=${meta.view}, outside the ring's declared channels=${h.channels} z_planes=${h.zPlanes} views=${h.views}: not stored`,
      });
    }
    if (place.unstored) this.storage.countUnstored(1, place.unstored);
    const target = place.store;
    const preview =
      this.preview?.offer({
        ref,
        meta,
        stream,
        header: h,
        level1: target !== null && target.block.ext !== null,
        workersBehind: this.qc.behind(),
      }) ?? null;
    this.qc.dispatch(ref, meta, stream, h, target, preview);
    return true;
  }

  shed(count: number): void {
    const c = this.counters;
    c.framesReceived += count;
    c.bytesReceived += count * (this.header as RingHeader).frameBytes;
    this.storage.countUnstored(count, 'frame-pool-full');
  }

  lost(reason: LossReason, count: number, atSeq: number, late: boolean): void {
    if (reason === 'overrun') this.counters.framesOverrun += count;
    else if (reason === 'torn') this.counters.framesTorn += count;
    else this.counters.framesGap += count;
    this.bus.emit('frames-lost', late ? { reason, count, atSeq, late } : { reason, count, atSeq });
  }

  async ringError(message: string): Promise<void> {
    this.bus.emit('log', { level: 'error', msg: `${message}; detaching (stored data is kept, acquisition finalized)` });
    this.bus.emit('storage-error', { message, code: 'ERING' });
    this.guard.stop();
    await this.finishAcquisition();
    // The app waits for a valid ring at the path again.
    if (!this.stopping) this.bus.emit('ring-detached', { reason: message });
  }

  // ---- life cycle ----

  /** Ends the current acquisition: seal blocks, encode, flush shards, finalize metadata, emit summary. */
  finishAcquisition(): Promise<void> {
    if (this.finishing) return this.finishing;
    if (!this.acqOpen) return this.inflight.settle();
    this.finishing = (async () => {
      const storePath = this.store?.root ?? null;
      await this.storage.end();
      const c = this.counters;
      const summary = {
        framesReceived: c.framesReceived,
        framesOverrun: c.framesOverrun,
        framesGap: c.framesGap,
        framesTorn: c.framesTorn,
        qcSampled: c.qcSampled,
        qcSampledReasons: { ...c.qcSampledReasons },
        framesUnstored: c.framesUnstored,
        bytesReceived: c.bytesReceived,
        bytesWritten: c.bytesWritten,
        compressionRatio: c.bytesWritten > 0 ? c.bytesRawStored / c.bytesWritten : 0,
        durationSeconds: (Date.now() - c.startedAt) / 1000,
      };
      this.bus.emit('acquisition-finished', { id: this.acqId, name: this.acqName, storePath, summary });
      this.acqOpen = false;
      this.qc.reset();
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
    this.stopping = true;
    await this.intake.drain();
    this.guard.stop();
    await this.finishAcquisition();
  }
}
