/**
 * The one typed event stream of the pipeline. Exporters (Prometheus, WebSocket hub, log,
 * acquisition summary) subscribe; none of them calls into the pipeline.
 */
import { EventEmitter } from 'node:events';
import type { FrameMeta } from '../ingest/ring-layout.js';
import type { FrameQc, StackQc } from '../qc/qc-types.js';

export interface StreamKey {
  camera: string;
  channel: string;
  view: string;
}

/** The one name of a stream on the page, in logs, reports and the API: "channel/view". */
export function streamId(s: { channel: string; view: string }): string {
  return `${s.channel}/${s.view}`;
}

export interface PipelineEvents {
  /** readLagMs: from the frame's ring timestamp to the ingest thread's copy of it. */
  'frame-received': { meta: FrameMeta; bytes: number; stream: StreamKey; readLagMs: number };
  /** `late`: overwritten before this sidecar attached (it joined a running acquisition), not fallen behind. */
  'frames-lost': { reason: 'overrun' | 'gap' | 'torn'; count: number; atSeq: number; late?: boolean };
  /** `sampledReason`: why focus and drift were skipped (null: measured in full). */
  'frame-qc': {
    meta: FrameMeta;
    stream: StreamKey;
    qc: FrameQc;
    latencyMs: number;
    processingSeconds: number;
    sampledReason: QcSampledReason | null;
  };
  'stack-qc': { stream: StreamKey; t: number; qc: StackQc };
  /** reason: a short code from a bounded set (a metric label), see spimstream_frames_unstored_total. */
  'frames-unstored': { count: number; reason: string };
  'chunk-stored': { stream: StreamKey; rawBytes: number; storedBytes: number; frames: number; latencyMs: number };
  /** A pyramid reduce job built planes of `level` (seconds of worker time), or a level block failed (ok false). */
  'pyramid-block': { level: number; seconds: number; ok: boolean };
  /** A shard (or unsharded chunk) renamed into place, durable; sha256 of its bytes. */
  'shard-written': { path: string; bytes: number; sha256: string };
  /** storePath: view 0's store; viewStores: every view's store, by view index (empty when not storing). */
  'acquisition-started': { id: number; name: string; storePath: string | null; viewStores: string[]; geometry: Record<string, unknown> };
  'acquisition-finished': { id: number; name: string; storePath: string | null; summary: AcquisitionSummary };
  /** A preview the viewer's rate asked for was not rendered: the workers were behind (1 per second then). */
  'preview-throttled': { stream: StreamKey };
  /** level: the pyramid level the image was made from (0: the frame, binned; 1: its level-1 plane). */
  preview: {
    stream: StreamKey;
    kind: 'plane' | 'mip';
    level: number;
    meta: FrameMeta;
    width: number;
    height: number;
    format: string;
    data: Uint8Array;
    lo: number;
    hi: number;
    saturated: Uint32Array;
  };
  /** A transition (update false), or the current value of a firing alert (update true, at most 1/s). */
  alert: { name: string; stream: StreamKey | null; active: boolean; message: string; value: number; update?: boolean };
  'storage-error': { message: string; code: string };
  'storage-resumed': { message: string };
  /** A deliberate change accepted: QC baselines (focus, signal, drift reference) start again. */
  'qc-rebaseline': { reason: string };
  /** The ring went bad (truncated, recreated, geometry changed): detached, acquisition finalized. */
  'ring-detached': { reason: string };
  /** The manifest of a finished store is on disk (the offload's last file for that store). */
  'manifest-written': { storePath: string; manifest: string };
  /** Files verified at the offload destination (lagSeconds: oldest of them, queued → verified) or failed. */
  'offload-files': { result: 'verified' | 'failed'; files: number; bytes: number; lagSeconds: number };
  'offload-failure': { reason: string; message: string };
  /** Every file of a store, the manifest last, is verified at the destination. */
  'offload-complete': { store: string; destination: string };
  /** A stack's live volume (uint16, x fastest, then y, then z), binned by `step` in x and y. */
  volume: {
    stream: StreamKey;
    t: number;
    width: number;
    height: number;
    depth: number;
    step: number;
    /** Voxel size in µm (x, y include the binning; z is the z step). */
    voxelUm: [number, number, number];
    /** The newest plane's timestamp (ms since the epoch, from the ring). */
    timestampMs: number;
    /** The stream's volume buffer itself: copy it while handling the event, never keep it. */
    data: Uint16Array;
  };
  'on-complete-started': { command: string; store: string };
  /**
   * The hand-off ended: `code` (null: could not start, or killed at the timeout), the Slurm job ids
   * its output named, and seconds from the end of the acquisition (null: not known, e.g. after a restart).
   */
  'on-complete': { command: string; code: number | null; jobs: string[]; seconds: number | null };
  log: { level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };
}

/**
 * Why a frame's QC was sampled: the frame tasks in flight stand for more of the workers' time than
 * a burst (workers-behind), or encoding or the disk is behind (encodes-behind: BlockAssembler's
 * encodesBehind; the workers go to encoding first).
 */
export type QcSampledReason = 'workers-behind' | 'encodes-behind';

export interface AcquisitionSummary {
  framesReceived: number;
  framesOverrun: number;
  framesGap: number;
  framesTorn: number;
  qcSampled: number;
  /** qcSampled by reason (only the reasons that occurred). */
  qcSampledReasons: Partial<Record<QcSampledReason, number>>;
  framesUnstored: number;
  bytesReceived: number;
  bytesWritten: number;
  compressionRatio: number;
  durationSeconds: number;
}

export class EventBus {
  private readonly emitter = new EventEmitter();
  constructor() {
    this.emitter.setMaxListeners(100);
  }
  on<K extends keyof PipelineEvents>(name: K, fn: (e: PipelineEvents[K]) => void): () => void {
    this.emitter.on(name, fn);
    return () => this.emitter.off(name, fn);
  }
  emit<K extends keyof PipelineEvents>(name: K, e: PipelineEvents[K]): void {
    this.emitter.emit(name, e);
  }
}
