/**
 * Storing again after a store error that may pass: a full disk that gets space, a file system
 * remounted read-write. Once a second every failed store of the acquisition probes a write
 * (AcquisitionStore.recover); when all succeed, storing resumes in new shards. Frames meanwhile are
 * counted unstored with the error code; QC and previews never stopped.
 */
import type { AcquisitionStore } from '../zarr/acquisition-store.js';

const RECOVERABLE = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EACCES', 'EPERM']);
const RETRY_MS = 1000;

export function isRecoverable(code: string): boolean {
  return RECOVERABLE.has(code);
}

export class StoreRetry {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private readonly stores: () => AcquisitionStore[],
    private readonly recovered: () => void,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.attempt(), RETRY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async attempt(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const stores = this.stores();
      const ok = (await Promise.all(stores.map((s) => s.recover()))).every(Boolean);
      // A new acquisition meanwhile has stores of its own.
      if (!ok || stores !== this.stores() || !this.timer) return;
      this.stop();
      this.recovered();
    } finally {
      this.busy = false;
    }
  }
}
