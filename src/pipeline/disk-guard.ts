/**
 * Stops storing, loudly, before the output disk is full (storage.min_free_bytes), and resumes when
 * space is back (5 % above the margin). Checked once a second while an acquisition stores; QC and
 * previews go on, and the frames not stored meanwhile are counted (reason EDISKGUARD).
 */
import type { Config } from '../config/config.js';
import { diskFree } from '../zarr/disk.js';

export interface Guarded {
  /** An acquisition is open and storing is configured. */
  active(): boolean;
  /** Storing is already off for another reason (then the guard does not take over). */
  disabledReason(): string | null;
  disable(code: string, message: string): void;
  resume(message: string): void;
}

export class DiskGuard {
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly cfg: Config,
    private readonly target: Guarded,
  ) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.check(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** A new acquisition starts with storing on. */
  reset(): void {
    this.stopped = false;
  }

  check(): void {
    if (!this.cfg.storage.enabled || !this.target.active()) return;
    const free = diskFree(this.cfg.storage.out);
    if (free === null) return;
    const min = this.cfg.storage.min_free_bytes;
    if (!this.stopped && free < min && this.target.disabledReason() === null) {
      this.stopped = true;
      this.target.disable(
        'EDISKGUARD',
        `disk guard: ${(free / 1e9).toFixed(2)} GB free on the output disk (${this.cfg.storage.out}), below storage.min_free_bytes ${(min / 1e9).toFixed(2)} GB: storing stopped, QC and preview continue`,
      );
    } else if (this.stopped && free > min * 1.05) {
      this.stopped = false;
      this.target.resume(`disk guard: ${(free / 1e9).toFixed(2)} GB free again: storing resumed`);
    }
  }
}
