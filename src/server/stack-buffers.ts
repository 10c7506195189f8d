/**
 * Two buffers per stream by stack parity, for what each stack accumulates while the previous one is
 * sent (the stack MIP, the live volume): stack t fills buffer t % 2, so the stack being filled never
 * overwrites the one being read. A stack's first plane clears its buffer (it last held stack t - 2,
 * long sent): planes that never arrive stay dark rather than showing an older stack. A late plane of
 * the previous stack still lands in that stack's buffer and clears nothing.
 */
export class StackBuffers {
  readonly buffers: [SharedArrayBuffer, SharedArrayBuffer];
  /** The stack each buffer holds (-1: none yet). */
  private readonly of: [number, number] = [-1, -1];

  constructor(readonly bytes: number) {
    this.buffers = [new SharedArrayBuffer(bytes), new SharedArrayBuffer(bytes)];
  }

  /**
   * The buffer for a plane of stack t, `fresh` when this plane started the stack (the buffer was
   * cleared); null for a plane older than the stack its buffer now holds.
   */
  claim(t: number): { buffer: SharedArrayBuffer; fresh: boolean } | null {
    const i = t % 2;
    if (this.of[i] > t) return null;
    const fresh = this.of[i] !== t;
    if (fresh) {
      this.of[i] = t;
      new Uint8Array(this.buffers[i]).fill(0);
    }
    return { buffer: this.buffers[i], fresh };
  }

  /** The buffer holding stack t, or null (never started, or reused by stack t + 2). */
  holding(t: number): SharedArrayBuffer | null {
    return this.of[t % 2] === t ? this.buffers[t % 2] : null;
  }
}
