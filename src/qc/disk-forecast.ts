/**
 * `local_disk_full_in`: how long until the output disk reaches the disk guard's margin
 * (storage.min_free_bytes, where storing stops) at the net inflow of the last minute — what is
 * written minus what offload's delete_local frees, read as the change of free space. Infinity while
 * free space is not shrinking. A minute smooths the saw-tooth of shards written and deleted in batches.
 */
const WINDOW_MS = 60_000;
/** Too short a history says nothing (a single shard's write). */
const MIN_SPAN_MS = 10_000;

export class DiskForecast {
  private readonly samples: { at: number; free: number }[] = [];

  sample(at: number, free: number): void {
    this.samples.push({ at, free });
    while (this.samples.length > 2 && this.samples[0].at < at - WINDOW_MS) this.samples.shift();
  }

  /** Net inflow in bytes per second over the window (negative: the disk is emptying); null before MIN_SPAN_MS. */
  inflow(): number | null {
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    if (!a || b.at - a.at < MIN_SPAN_MS) return null;
    return (a.free - b.free) / ((b.at - a.at) / 1000);
  }

  /** Seconds until free space falls to `margin` bytes at the current net inflow (0 when below already). */
  fullInSeconds(margin: number): number {
    const b = this.samples[this.samples.length - 1];
    const rate = this.inflow();
    if (!b || rate === null || rate <= 0) return Infinity;
    return Math.max(0, (b.free - margin) / rate);
  }

  reset(): void {
    this.samples.length = 0;
  }
}
