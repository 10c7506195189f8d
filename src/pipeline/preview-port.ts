/**
 * The preview port: how the pipeline offers frames to whoever renders previews (the server's
 * PreviewService), handed to the pipeline at construction. The pipeline calls out through it; the
 * preview side never reaches into the pipeline (what it needs comes with each call, and a
 * throttled preview is an event the pipeline counts).
 */
import type { FrameMeta, RingHeader } from '../ingest/ring-layout.js';
import type { StreamKey } from './events.js';
import type { FrameRef } from './frame-ref.js';

/**
 * A preview that waits for the frame task: with the pyramid on, the task writes the frame's level-1
 * plane into `levelOut` and the preview is rendered from it (`ready`, after the task; ok false: it failed).
 */
export interface PreviewRequest {
  levelOut: SharedArrayBuffer;
  ready(ok: boolean): void;
}

/** A plane of a stream's live volume: `offset` (uint16 elements) into `buffer`, binned by `step`. */
export interface VolumeTarget {
  buffer: SharedArrayBuffer;
  step: number;
  offset: number;
}

export interface PreviewFrame {
  ref: FrameRef;
  meta: FrameMeta;
  stream: StreamKey;
  header: RingHeader;
  /** The frame is stored with the pyramid on: its frame task can hand over its level-1 plane. */
  level1: boolean;
  /** The workers are behind (QC sampled): previews yield first. */
  workersBehind: boolean;
}

export interface PreviewPort {
  /** Offered every frame; may `retain` the ref (and release it later), or ask for its level-1 plane. */
  offer(f: PreviewFrame): PreviewRequest | null;
  /** The stack MIP accumulator this frame adds to (null: nobody watches the stream's MIP). */
  mipTarget(meta: FrameMeta, stream: StreamKey, header: RingHeader): { buffer: SharedArrayBuffer; step: number } | null;
  /**
   * Where this frame's binned plane goes in the stream's live volume (null: nobody watches it in
   * 3-D, or `behind`: encoding is behind and the plane is skipped — that stack's volume is not sent).
   */
  volumeTarget(meta: FrameMeta, stream: StreamKey, header: RingHeader, behind: boolean): VolumeTarget | null;
}
