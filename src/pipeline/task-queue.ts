/**
 * The worker pool's queue, in two levels: per-frame tasks (QC, which also writes stored frames into
 * their z-block) before chunk encoding. Frame tasks gate everything behind them — frame-pool slots,
 * z-block completion, live QC — while an encode can wait as long as z-blocks are free. In one FIFO,
 * a sealed block's 64 encodes delayed every frame behind them (QC p99 0.9 s at 500 MB/s).
 */
import { queueOptionsSymbol, type TaskQueue } from 'piscina';

type QueuedTask = Parameters<TaskQueue['push']>[0];

/** Queue options a task payload carries (read by the queue, never sent to the worker). */
export interface QueueOptions {
  urgent: boolean;
}

export function urgent<T extends object>(payload: T): T {
  (payload as Record<symbol, QueueOptions>)[queueOptionsSymbol] = { urgent: true };
  return payload;
}

export class TwoLevelTaskQueue implements TaskQueue {
  private readonly high: QueuedTask[] = [];
  private readonly low: QueuedTask[] = [];

  get size(): number {
    return this.high.length + this.low.length;
  }

  private levelOf(t: QueuedTask): QueuedTask[] {
    const o = t[queueOptionsSymbol] as QueueOptions | null;
    return o?.urgent ? this.high : this.low;
  }

  push(t: QueuedTask): void {
    this.levelOf(t).push(t);
  }

  unshift(t: QueuedTask): void {
    this.levelOf(t).unshift(t);
  }

  shift(): QueuedTask | null {
    return this.high.shift() ?? this.low.shift() ?? null;
  }

  remove(t: QueuedTask): void {
    const level = this.levelOf(t);
    const i = level.indexOf(t);
    if (i >= 0) level.splice(i, 1);
  }
}
