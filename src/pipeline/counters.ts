import type { QcSampledReason } from './events.js';

/** Running totals of one acquisition (what the summary line and /metrics report). */
export class Counters {
  framesReceived = 0;
  framesOverrun = 0;
  framesGap = 0;
  framesTorn = 0;
  framesUnstored = 0;
  /** Frames whose focus and drift were skipped (workers behind; storage first), by reason. */
  qcSampledReasons: Partial<Record<QcSampledReason, number>> = {};
  /** Previews not rendered because the workers were behind (capped at 1 per second per stream). */
  previewsThrottled = 0;
  bytesReceived = 0;
  bytesRawStored = 0;
  bytesWritten = 0;
  startedAt = Date.now();

  /** Frames whose focus and drift were skipped, all reasons. */
  get qcSampled(): number {
    let n = 0;
    for (const v of Object.values(this.qcSampledReasons)) n += v;
    return n;
  }

  reset(): void {
    Object.assign(this, new Counters());
  }
}
