/**
 * When a stream's partial shards may be closed: per (t, c, view), the z-blocks opened and those
 * delivered to the store. Once the stream has moved on to a later timepoint and every block it
 * opened for the earlier one is delivered, that timepoint's shards are flushed. Frames of a later
 * timepoint are what tells: a shard is never closed while one of its blocks may still arrive.
 */

interface Open {
  opened: number;
  delivered: number;
  closed: boolean;
}

export class TimepointFlush {
  private readonly open = new Map<string, Open>();
  private readonly lastT = new Map<string, number>();

  constructor(
    private readonly hooks: {
      /** The stream's first frame of timepoint t (before the previous timepoint is closed). */
      begin: (t: number, c: number, view: number) => void;
      flush: (t: number, c: number, view: number) => void;
    },
  ) {}

  /**
   * A frame of (t, c, view) arrives (idempotent for the same t). When t is new for the stream, the
   * previous timepoint is closed and flushed once its blocks are delivered.
   */
  frame(t: number, c: number, view: number): void {
    const sk = `${c}/${view}`;
    const prev = this.lastT.get(sk);
    if (prev === t) return;
    this.hooks.begin(t, c, view);
    if (prev !== undefined) {
      const old = this.open.get(`${prev}/${c}/${view}`);
      if (old) {
        old.closed = true;
        this.maybeFlush(prev, c, view);
      }
    }
    this.lastT.set(sk, t);
    if (!this.open.has(`${t}/${c}/${view}`)) this.open.set(`${t}/${c}/${view}`, { opened: 0, delivered: 0, closed: false });
  }

  /** A z-block of (t, c, view) received its first plane. */
  blockOpened(t: number, c: number, view: number): void {
    const tc = this.open.get(`${t}/${c}/${view}`);
    if (tc) tc.opened++;
  }

  /** A z-block of (t, c, view) is with the store. */
  blockDelivered(t: number, c: number, view: number): void {
    const tc = this.open.get(`${t}/${c}/${view}`);
    if (!tc) return;
    tc.delivered++;
    this.maybeFlush(t, c, view);
  }

  clear(): void {
    this.open.clear();
    this.lastT.clear();
  }

  private maybeFlush(t: number, c: number, view: number): void {
    const k = `${t}/${c}/${view}`;
    const tc = this.open.get(k);
    if (tc?.closed && tc.delivered >= tc.opened) {
      this.open.delete(k);
      this.hooks.flush(t, c, view);
    }
  }
}
