/**
 * Fixed-size pool of frame buffers in one SharedArrayBuffer. Memory is bounded by construction:
 * when every buffer is in use, ingest stops copying and the ring overruns (counted, never queued).
 */
export class FramePool {
  readonly buffer: SharedArrayBuffer;
  private readonly free: number[] = [];

  constructor(readonly capacity: number, readonly frameBytes: number) {
    if (capacity < 1) throw new Error(`frame pool capacity must be >= 1, got ${capacity}`);
    this.buffer = new SharedArrayBuffer(capacity * frameBytes);
    for (let i = capacity - 1; i >= 0; i--) this.free.push(i);
  }

  get available(): number {
    return this.free.length;
  }

  get inUse(): number {
    return this.capacity - this.free.length;
  }

  /** Returns a buffer index, or -1 when the pool is exhausted. */
  acquire(): number {
    return this.free.length > 0 ? (this.free.pop() as number) : -1;
  }

  release(index: number): void {
    this.free.push(index);
  }

}
