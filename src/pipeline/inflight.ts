/** The promises of one pipeline still running (frame tasks, encodes, writes): stop and finish wait for them. */
export class Inflight {
  private readonly set = new Set<Promise<unknown>>();

  track(p: Promise<unknown>): void {
    this.set.add(p);
    void p.finally(() => this.set.delete(p));
  }

  get size(): number {
    return this.set.size;
  }

  /** Waits until nothing is in flight (work started while waiting is waited for too). */
  async settle(): Promise<void> {
    while (this.set.size > 0) await Promise.allSettled([...this.set]);
  }
}
