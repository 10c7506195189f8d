/**
 * The main thread's side of ingest: starts the ingest thread for an attached ring, keeps its
 * messages in ring order, and hands them on to the sink one by one — frames (as references to
 * frame-pool buffers, counted so a buffer returns to the ingest thread when its last reader is
 * done), acquisition boundaries (the sink's end is awaited before anything later is handed on),
 * losses, and a ring error. A frame the sink cannot take yet stays at the head of the queue; frames
 * behind it wait in the pool, then in the ring, which overruns (counted) only when both are full.
 */
import { IngestClient } from '../ingest/ingest-client.js';
import type { IngestMessage, IngestStartPosition, LossReason } from '../ingest/ingest-protocol.js';
import type { FrameMeta, RingHeader } from '../ingest/ring-layout.js';
import type { SlotPool } from '../ingest/slot-pool.js';
import type { FrameRef } from './frame-ref.js';

/** How often a frame the sink asked to wait is offered again (sooner when the sink kicks). */
const RETRY_MS = 2;

export interface IntakeSink {
  attached(header: RingHeader, priority: number | null): void;
  acquisitionStart(id: number): void;
  acquisitionEnd(): Promise<void>;
  /** True when the frame was taken (the sink now holds `ref`); false, untouched, to be offered again later. */
  frame(ref: FrameRef, meta: FrameMeta, readAtMs: number): boolean;
  lost(reason: LossReason, count: number, atSeq: number, late: boolean): void;
  /** Frames published and skipped by the ingest thread (pool full, ring half full): received, not stored. */
  shed(count: number): void;
  /** The ring went bad: the thread has stopped; the sink finalizes and says it is detached. */
  ringError(message: string): Promise<void>;
}

export class Intake {
  private client: IngestClient | null = null;
  private queue: IngestMessage[] = [];
  private head = 0;
  private busy = false;
  private retry: NodeJS.Timeout | null = null;
  private refs = new Int32Array(0);
  private idle: (() => void)[] = [];

  constructor(private readonly sink: IntakeSink) {}

  get pool(): SlotPool | null {
    return this.client?.pool ?? null;
  }

  /** The ingest thread has opened the ring and is reading it. */
  get attached(): boolean {
    return this.client !== null && this.ready;
  }
  private ready = false;

  ringFill(): number {
    return this.client?.ringFill ?? 0;
  }

  /** The longest pause between two ring polls of the ingest thread since the last call, ms. */
  takeMaxPollGapMs(): number {
    return this.client?.takeMaxPollGapMs() ?? 0;
  }

  /** Starts the ingest thread on a ring whose header was validated, open as `fd` (closed when the thread has exited). */
  attach(ringPath: string, header: RingHeader, position: IngestStartPosition, poolCapacity: number, fd: number): void {
    this.refs = new Int32Array(poolCapacity);
    this.ready = false;
    this.queue = [];
    this.head = 0;
    this.client = new IngestClient(
      ringPath,
      header,
      position,
      poolCapacity,
      (batch) => {
        for (const m of batch) this.queue.push(m);
        this.pump();
      },
      fd,
    );
  }

  /** Something downstream freed up (a z-block): offer the waiting frame again now. */
  kick(): void {
    if (this.retry) {
      clearTimeout(this.retry);
      this.retry = null;
    }
    this.pump();
  }

  /** Stop: the thread reads what is published now; resolves once all of it has been handed on. */
  async drain(): Promise<void> {
    const c = this.client;
    if (!c) return;
    await c.drain();
    await this.whenIdle();
    this.detach();
  }

  /** Resolves when every message received so far has been handed on. */
  whenIdle(): Promise<void> {
    if (!this.busy && !this.retry && this.head >= this.queue.length) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private detach(): void {
    this.client = null;
    this.ready = false;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }

  private ref(slot: number): FrameRef {
    const pool = (this.client as IngestClient).pool;
    const refs = this.refs;
    refs[slot] = 1;
    return {
      buffer: pool.frames,
      offset: slot * pool.frameBytes,
      retain: () => {
        refs[slot]++;
      },
      release: () => {
        if (--refs[slot] === 0) pool.release(slot);
      },
    };
  }

  private pump(): void {
    if (this.busy || this.retry) return;
    while (this.head < this.queue.length) {
      const m = this.queue[this.head];
      if (m.k === 'frame') {
        if (!this.client) {
          this.head++;
          continue;
        }
        const ref = this.ref(m.slot);
        if (!this.sink.frame(ref, m.meta, m.readAtMs)) {
          this.refs[m.slot] = 0; // not taken: the buffer keeps the frame, nothing to return
          this.retry = setTimeout(() => {
            this.retry = null;
            this.pump();
          }, RETRY_MS);
          return;
        }
        this.head++;
        continue;
      }
      this.head++;
      if (m.k === 'attached') {
        this.ready = true;
        this.sink.attached(m.header, m.priority);
      } else if (m.k === 'acq-start') this.sink.acquisitionStart(m.id);
      else if (m.k === 'lost') this.sink.lost(m.reason, m.count, m.atSeq, m.late);
      else if (m.k === 'shed') this.sink.shed(m.count);
      else if (m.k === 'acq-end' || m.k === 'error') {
        this.busy = true;
        const step = m.k === 'acq-end' ? this.sink.acquisitionEnd() : this.detachAfter(m.message);
        void step.finally(() => {
          this.busy = false;
          this.pump();
        });
        return;
      }
    }
    this.queue = [];
    this.head = 0;
    for (const r of this.idle.splice(0)) r();
  }

  private async detachAfter(message: string): Promise<void> {
    const c = this.client;
    this.detach();
    await c?.abort();
    await this.sink.ringError(message);
  }
}
