import type { QcSampledReason } from './events.js';

/** Running totals of one acquisition (what the summary line and /metrics report). */
export class Counters {
  framesReceived = 0;
  framesOverrun = 0;
  framesGap = 0;
  framesTorn = 0;
  framesUnstored = 0;
  /** Frames whose focus and drift were skipped (workers behind; storage first). */
  qcSampled = 0;
  qcSampledReasons: Partial<Record<QcSampledReason, number>> = {};
  /** Previews not rendered because the workers were behind (capped at 1 per second per stream). */
  previewsThrottled = 0;
  bytesReceived = 0;
  bytesRawStored = 0;
  bytesWritten = 0;
  startedAt = Date.now();

  reset(): void {
    Object.assign(this, new Counters());
  }
}
