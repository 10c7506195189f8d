/**
 * The frame pool shared by the ingest thread and the main thread: fixed-size frame buffers in one
 * SharedArrayBuffer and a single-producer/single-consumer queue of free buffer indices (the main
 * thread returns buffers, the ingest thread takes them). Memory is bounded by construction: when no
 * buffer is free the ingest thread stops copying and the ring overruns (counted, never queued).
 */

/** What a second thread needs to open the same pool. */
export interface SharedSlotPool {
  frames: SharedArrayBuffer;
  /** Int32: [0] head (next free index to take), [1] tail (next place to return one), [2] wake counter, then the queue. */
  queue: SharedArrayBuffer;
  capacity: number;
  frameBytes: number;
}

const HEAD = 0;
const TAIL = 1;
const WAKE = 2;
const Q0 = 3;

export class SlotPool {
  readonly frames: SharedArrayBuffer;
  readonly capacity: number;
  readonly frameBytes: number;
  private readonly q: Int32Array;
  /** Head and tail run modulo 2 × capacity, so a full and an empty queue differ. */
  private readonly mod: number;

  constructor(s: SharedSlotPool) {
    this.frames = s.frames;
    this.capacity = s.capacity;
    this.frameBytes = s.frameBytes;
    this.q = new Int32Array(s.queue);
    this.mod = 2 * s.capacity;
  }

  static create(capacity: number, frameBytes: number): SlotPool {
    if (capacity < 1) throw new Error(`frame pool capacity must be >= 1, got ${capacity}`);
    const queue = new SharedArrayBuffer((Q0 + capacity) * 4);
    const q = new Int32Array(queue);
    for (let i = 0; i < capacity; i++) q[Q0 + i] = i;
    q[TAIL] = capacity; // every buffer starts free
    return new SlotPool({ frames: new SharedArrayBuffer(capacity * frameBytes), queue, capacity, frameBytes });
  }

  shared(): SharedSlotPool {
    return { frames: this.frames, queue: this.q.buffer as SharedArrayBuffer, capacity: this.capacity, frameBytes: this.frameBytes };
  }

  /** Free buffers (either thread; a snapshot). */
  get available(): number {
    return (Atomics.load(this.q, TAIL) - Atomics.load(this.q, HEAD) + this.mod) % this.mod;
  }

  get inUse(): number {
    return this.capacity - this.available;
  }

  /** Ingest thread only: a free buffer index, or -1 when every buffer is in use. */
  acquire(): number {
    const head = Atomics.load(this.q, HEAD);
    if (head === Atomics.load(this.q, TAIL)) return -1;
    const slot = this.q[Q0 + (head % this.capacity)];
    Atomics.store(this.q, HEAD, (head + 1) % this.mod);
    return slot;
  }

  /** Main thread only (or the ingest thread for a buffer it never handed over): returns a buffer. */
  release(slot: number): void {
    const tail = Atomics.load(this.q, TAIL);
    this.q[Q0 + (tail % this.capacity)] = slot;
    Atomics.store(this.q, TAIL, (tail + 1) % this.mod);
    Atomics.add(this.q, WAKE, 1);
    Atomics.notify(this.q, WAKE);
  }

  /** Ingest thread: sleeps up to `ms` or until a buffer is returned (or `wake()` is called). */
  sleep(ms: number): void {
    Atomics.wait(this.q, WAKE, Atomics.load(this.q, WAKE), ms);
  }

  /** Wakes a sleeping ingest thread (a command is waiting for it). */
  wake(): void {
    Atomics.add(this.q, WAKE, 1);
    Atomics.notify(this.q, WAKE);
  }
}
