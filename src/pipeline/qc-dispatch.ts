/**
 * Sends each received frame to the workers: one frame task computes its QC and, when the frame is
 * stored, writes its plane into the z-block. Owns the drift references and the sampling decision:
 * when the workers fall behind, focus and drift are skipped (counted as sampled) before storage waits.
 */
import type { DownsampleMethod } from '../../workers/kernels/pyramid.js';
import type { Config } from '../config/config.js';
import { bytesPerPixel, type FrameMeta, type RingHeader } from '../ingest/ring-layout.js';
import type { Counters } from './counters.js';
import type { EventBus, QcSampledReason, StreamKey } from './events.js';
import type { FrameRef } from './frame-ref.js';
import type { Inflight } from './inflight.js';
import type { PlaneTarget } from './storage-stage.js';
import type { WorkerPool } from './worker-pool.js';
import type { QcParams } from '../../workers/tasks.js';
import type { TileGeometry } from '../../workers/kernels/tiles.js';
import type { FrameQc } from '../qc/qc-types.js';
import type { PreviewRequest, VolumeTarget } from './preview-port.js';
import { excluded } from '../qc/qc-gate.js';

/** Frame tasks in flight that never count as behind (a few frame times at any frame size). */
const QC_SAMPLE_MIN_INFLIGHT = 8;
/**
 * Seconds of the workers' time the frame tasks in flight may stand for before QC is sampled. A
 * producer's burst clears within it unsampled: a camera buffer catching up delivered 16 frames of
 * 2048² at once at 300 MB/s (~0.1 s of work on 2 workers), which a fixed 8 in flight had sampled.
 */
export const QC_SAMPLE_BACKLOG_S = 0.25;
/**
 * Seconds of a frame task: the median of the last 16 unsampled ones, once 8 are in. A median, because
 * each worker's first tasks run before the JIT has compiled the kernels (90 ms against 3 ms at 1024²)
 * and a stack's drift plane costs several times a plane without: either would make a mean say
 * "behind" for a burst the workers clear in a few milliseconds.
 */
export class TaskSeconds {
  private readonly last = new Float64Array(16);
  private readonly sorted = new Float64Array(16);
  private n = 0;
  private median = 0;

  add(seconds: number): void {
    this.last[this.n % this.last.length] = seconds;
    this.n++;
    const k = Math.min(this.n, this.last.length);
    if (k < 8) return;
    this.sorted.set(this.last.subarray(0, k));
    const s = this.sorted.subarray(0, k).sort();
    this.median = k % 2 ? s[k >> 1] : (s[k / 2 - 1] + s[k / 2]) / 2;
  }

  /** 0 until 8 tasks were measured. */
  get value(): number {
    return this.median;
  }

  reset(): void {
    this.n = 0;
    this.median = 0;
  }
}

/**
 * Frame tasks in flight from which QC is sampled: those the workers clear in QC_SAMPLE_BACKLOG_S at
 * the measured seconds per frame task, at most half the frame pool (each holds a slot; the other
 * half takes what arrives while QC is sampled), never fewer than QC_SAMPLE_MIN_INFLIGHT.
 */
export function sampleThreshold(o: { poolSlots: number; workers: number; taskSeconds: number }): number {
  const byTime = o.taskSeconds > 0 ? Math.floor((QC_SAMPLE_BACKLOG_S * o.workers) / o.taskSeconds) : Number.POSITIVE_INFINITY;
  return Math.max(QC_SAMPLE_MIN_INFLIGHT, Math.min(byTime, Math.floor(o.poolSlots / 2)));
}

/**
 * Why QC is sampled now, if it is: encodes behind first (the z-block pool, storage at stake: give
 * encoding the workers), then the frame tasks.
 */
export function sampleReason(o: { encodesBehind: boolean; frameTasks: number; threshold: number }): QcSampledReason | null {
  if (o.encodesBehind) return 'encodes-behind';
  return o.frameTasks >= o.threshold ? 'workers-behind' : null;
}

export interface QcDispatchHooks {
  /** Encoding or the disk is behind the frames (BlockAssembler.encodesBehind). */
  encodesBehind(): boolean;
  /** Buffers of the frame pool (0 before a ring is attached). */
  framePoolSlots(): number;
  geometry(): TileGeometry | null;
  /** The plane was written into its z-block (ok) or the task failed. */
  planeDone(target: PlaneTarget, ok: boolean): void;
  /** The stack MIP accumulator a frame should add to (preview service), if any. */
  mipTarget(meta: FrameMeta, stream: StreamKey): { buffer: SharedArrayBuffer; step: number } | null;
  /** The live-volume plane a frame should write (preview service), if any. */
  volumeTarget(meta: FrameMeta, stream: StreamKey, behind: boolean): VolumeTarget | null;
}

export type { PreviewRequest } from './preview-port.js';

export class QcDispatch {
  /** Frame tasks sent to the workers and not yet back. */
  private frameTasks = 0;
  private readonly taskSeconds = new TaskSeconds();
  private readonly driftRefs = new Map<string, SharedArrayBuffer>();
  /** The last judged drift plane's signal per stream and plane: an intensity step is not judged (qc-gate.ts). */
  private readonly driftSignal = new Map<string, number>();
  private readonly params: QcParams;

  constructor(
    private readonly cfg: Config,
    private readonly bus: EventBus,
    private readonly workers: WorkerPool,
    private readonly counters: Counters,
    private readonly inflight: Inflight,
    private readonly hooks: QcDispatchHooks,
  ) {
    this.params = qcParamsFromConfig(cfg);
  }

  /** The workers are behind: QC is sampled, and previews are throttled (PreviewService). */
  behind(): boolean {
    return this.sampleReason() !== null;
  }

  private sampleReason(): QcSampledReason | null {
    const threshold = sampleThreshold({
      poolSlots: this.hooks.framePoolSlots(),
      workers: this.workers.threads,
      taskSeconds: this.taskSeconds.value,
    });
    return sampleReason({ encodesBehind: this.hooks.encodesBehind(), frameTasks: this.frameTasks, threshold });
  }

  /** A new acquisition: drift is measured against its own first stack; its frames may differ in size. */
  reset(): void {
    this.taskSeconds.reset();
    this.driftRefs.clear();
    this.driftSignal.clear();
  }

  /** The frame's drift, unless its plane is saturated or its intensity stepped: then measured but not reported. */
  private gateDrift(qc: FrameQc, refKey: string): FrameQc {
    if (!qc.drift) return qc;
    const why = excluded(qc.saturatedRatio, qc.signal, this.driftSignal.get(refKey) ?? null, {
      saturatedRatio: this.cfg.qc.thresholds.saturated_ratio,
      intensityStep: this.cfg.qc.intensity_step_factor,
    });
    if (why) return { ...qc, drift: { ...qc.drift, valid: false, excluded: why } };
    if (qc.signal > 0) this.driftSignal.set(refKey, qc.signal);
    return qc;
  }

  /** Runs the frame task for a frame held by `ref` (released when the task is done). */
  dispatch(
    ref: FrameRef,
    meta: FrameMeta,
    stream: StreamKey,
    h: RingHeader,
    target: PlaneTarget | null,
    preview: PreviewRequest | null = null,
  ): void {
    // Drift is costly (FFT + upsampled DFT): by default only on the central plane of each stack.
    const refKey = `${stream.view}/${meta.c}/${meta.z}`;
    const doDrift = this.cfg.qc.drift_planes === 'all' || meta.z === Math.floor(h.zPlanes / 2);
    const mip = this.hooks.mipTarget(meta, stream);
    const reason = this.sampleReason();
    const sampled = reason !== null;
    if (reason) this.counters.qcSampledReasons[reason] = (this.counters.qcSampledReasons[reason] ?? 0) + 1;
    this.frameTasks++;
    const geometry = this.hooks.geometry();
    const task = this.workers
      .frame({
        sampled,
        kind: 'frame',
        frames: ref.buffer,
        frameOffset: ref.offset,
        width: h.width,
        height: h.height,
        bytesPerPixel: bytesPerPixel(h.dtype),
        saturationLevel: Math.min(this.cfg.camera.saturation_level, (1 << h.bitDepth) - 1),
        offset: this.cfg.camera.offset,
        qc: this.params,
        drift: doDrift,
        driftReference: doDrift ? (this.driftRefs.get(refKey) ?? null) : null,
        driftRefreshReference: this.cfg.qc.drift_reference === 'previous',
        mip: mip?.buffer ?? null,
        mipStep: mip?.step ?? 1,
        // The live volume yields to storage: skipped while encodes are behind.
        volume: this.hooks.volumeTarget(meta, stream, reason === 'encodes-behind'),
        store:
          target && geometry
            ? {
                block: target.block.buffer,
                nonZero: target.block.nonZero,
                z: target.plane,
                geometry,
                ext: target.block.ext,
                downsample: this.cfg.storage.downsample as DownsampleMethod,
                levelOut: preview?.levelOut ?? null,
                simd: this.cfg.pipeline.kernels === 'simd',
              }
            : null,
      })
      .then(
        (r) => {
          this.frameTasks--;
          ref.release();
          if (!sampled) this.taskSeconds.add(r.seconds);
          if (target) this.hooks.planeDone(target, true);
          preview?.ready(true);
          const qc = this.gateDrift(r.qc, refKey);
          // A saturated or intensity-stepped plane never becomes the drift reference.
          if (!qc.drift?.excluded && r.newReference && (!this.driftRefs.has(refKey) || this.cfg.qc.drift_reference === 'previous'))
            this.driftRefs.set(refKey, r.newReference);
          const latencyMs = Date.now() - meta.timestampNs / 1e6;
          this.bus.emit('frame-qc', { meta, stream, qc, latencyMs, processingSeconds: r.seconds, sampledReason: reason });
        },
        (e: unknown) => {
          this.frameTasks--;
          ref.release();
          if (target) this.hooks.planeDone(target, false);
          preview?.ready(false);
          this.bus.emit('log', { level: 'error', msg: `frame ${meta.seq}: worker failed: ${(e as Error).message}` });
        },
      );
    this.inflight.track(task);
  }
}

/** The worker's QC parameters from the configuration (also used by calibrate and the QC accuracy tests). */
export function qcParamsFromConfig(cfg: Config): QcParams {
  const q = cfg.qc;
  return {
    checksum: q.checksum,
    focus: q.focus,
    dctsPsfPx: q.dcts_psf_px,
    roi: q.roi,
    focusBin: q.focus_bin,
    driftWindow: q.drift_window,
    driftBin: q.drift_bin,
    driftUpsample: q.drift_upsample,
    driftMinConfidence: q.drift_min_confidence,
    gain: cfg.camera.gain_e_per_adu,
    readNoise: cfg.camera.read_noise_adu,
  };
}
