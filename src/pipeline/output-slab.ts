/**
 * Where workers put encoded chunks: one SharedArrayBuffer cut into fixed slots, handed out a whole
 * z-block at a time (all of a block's chunks or none, so two blocks can never each hold half of the
 * slots and wait for the other). A slot returns once its chunk is on disk. Transferring a fresh
 * ArrayBuffer per chunk instead counted as new external memory in both threads every time: at
 * 400 MB/s, several full mark-compacts per second on the main thread and fresh pages for every chunk.
 */
import { DIRECT_ALIGN, pageAlignedBuffer } from '../zarr/appender.js';

export class OutputSlab {
  readonly buffer: SharedArrayBuffer;
  private readonly free: number[] = [];
  private readonly queue: { n: number; grant: (slots: number[]) => void }[] = [];
  /** 1 for slots whose chunk was handed to the store and is not on disk yet. */
  private readonly writing: Uint8Array;
  private writingCount = 0;

  constructor(
    readonly slotBytes: number,
    readonly slots: number,
  ) {
    // Page-aligned slots of whole blocks: their chunks go to disk through O_DIRECT without a copy.
    const aligned = slotBytes % DIRECT_ALIGN === 0 ? pageAlignedBuffer(slotBytes * slots) : null;
    this.buffer = aligned ?? new SharedArrayBuffer(slotBytes * slots);
    this.writing = new Uint8Array(slots);
    for (let i = slots - 1; i >= 0; i--) this.free.push(i);
  }

  /** Resolves with n slots (FIFO among waiters); n must not exceed `slots`. */
  acquire(n: number): Promise<number[]> {
    if (n > this.slots) throw new Error(`output slab has ${this.slots} slots, ${n} requested`);
    if (this.queue.length === 0 && this.free.length >= n) return Promise.resolve(this.free.splice(this.free.length - n, n));
    return new Promise((grant) => this.queue.push({ n, grant }));
  }

  /** The chunk bytes of a slot. */
  view(slot: number, length: number): Uint8Array {
    return new Uint8Array(this.buffer, slot * this.slotBytes, length);
  }

  /** The chunk in this view now waits for the disk (see `diskBound`). */
  markWriting(chunk: Uint8Array): void {
    if (chunk.buffer !== this.buffer) return;
    const slot = chunk.byteOffset / this.slotBytes;
    if (this.writing[slot] === 0) this.writingCount++;
    this.writing[slot] = 1;
  }

  /** Returns the slot under a chunk view (anything else, e.g. a chunk too big for a slot, is ignored). */
  releaseView(chunk: Uint8Array): void {
    if (chunk.buffer !== this.buffer) return;
    this.release(chunk.byteOffset / this.slotBytes);
  }

  release(slot: number): void {
    if (this.writing[slot] === 1) {
      this.writing[slot] = 0;
      this.writingCount--;
    }
    this.free.push(slot);
    while (this.queue.length > 0 && this.free.length >= this.queue[0].n) {
      const w = this.queue.shift() as { n: number; grant: (slots: number[]) => void };
      w.grant(this.free.splice(this.free.length - w.n, w.n));
    }
  }

  get idle(): number {
    return this.free.length;
  }

  /**
   * True when blocks wait for slots and at least half of the slots hold chunks waiting for the disk:
   * the disk, not the encoder, is what storage waits for.
   */
  get diskBound(): boolean {
    return this.queue.length > 0 && this.writingCount * 2 >= this.slots;
  }
}
