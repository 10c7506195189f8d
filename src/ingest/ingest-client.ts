/**
 * Main-thread handle of the ingest thread: creates the shared frame pool for a ring's geometry,
 * starts the thread, hands its message batches on, and stops it (drain: every frame published at
 * stop is still read; abort: at once).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { PACKAGE_ROOT } from '../package-info.js';
import { SlotPool } from './slot-pool.js';
import type { RingHeader } from './ring-layout.js';
import {
  CMD_ABORT,
  CMD_DRAIN,
  CTL_COMMAND,
  INGEST_NICE,
  STATUS_MAX_POLL_GAP,
  STATUS_POLLS,
  STATUS_RING_FILL,
  STATUS_WORDS,
  type IngestMessage,
  type IngestStart,
  type IngestStartPosition,
} from './ingest-protocol.js';

/** The compiled thread entry (tests run the TS sources, the thread always runs compiled code). */
export function ingestThreadFile(): string {
  const file = path.join(PACKAGE_ROOT, 'dist', 'src', 'ingest', 'ingest-thread.js');
  if (!fs.existsSync(file)) throw new Error(`cannot find ${file}: run \`npm run build\` first`);
  return file;
}

export class IngestClient {
  readonly pool: SlotPool;
  private readonly worker: Worker;
  private readonly control: Int32Array;
  private readonly status: Float64Array;
  /** Resolves when the thread has exited (after its last batch was delivered). */
  readonly exited: Promise<void>;
  /** Resolves when the thread's last word ('drained' or 'error') has been handed on. */
  private readonly lastWord: Promise<void>;

  constructor(
    ringPath: string,
    header: RingHeader,
    position: IngestStartPosition,
    poolCapacity: number,
    onBatch: (batch: IngestMessage[]) => void,
    /** The ring, open: the thread reads through it; closed here once the thread has exited. */
    fd: number,
  ) {
    this.pool = SlotPool.create(poolCapacity, header.frameBytes);
    const control = new SharedArrayBuffer(4 * 4);
    const status = new SharedArrayBuffer(STATUS_WORDS * 8);
    this.control = new Int32Array(control);
    this.status = new Float64Array(status);
    const start: IngestStart = {
      kind: 'spimstream-ingest',
      ringPath,
      fd,
      pool: this.pool.shared(),
      control,
      status,
      expectedFrameBytes: header.frameBytes,
      position,
      priority: INGEST_NICE,
    };
    try {
      this.worker = new Worker(ingestThreadFile(), { workerData: start, name: 'spimstream-ingest' });
    } catch (e) {
      fs.closeSync(fd); // no thread will read it
      throw e;
    }
    let said: () => void = () => undefined;
    this.lastWord = new Promise((r) => {
      said = r;
    });
    this.worker.on('message', (batch: IngestMessage[]) => {
      onBatch(batch);
      if (batch.some((m) => m.k === 'drained' || m.k === 'error')) said();
    });
    this.exited = new Promise((resolve) => {
      this.worker.on('error', (e) => {
        onBatch([{ k: 'error', message: `ingest thread failed: ${e.message}` }]);
        said();
      });
      this.worker.on('exit', () => {
        // Opened by the attach on this thread, so closed here (a worker closing it draws a Node warning).
        fs.closeSync(fd);
        resolve();
      });
    });
  }

  /** Ring frames published but not yet read, over the slot count (kept current by the thread). */
  get ringFill(): number {
    return this.status[STATUS_RING_FILL];
  }

  /** Ring polls so far (the thread's poll interval: `pollSleepMs` in ring-ingest.ts). */
  get polls(): number {
    return this.status[STATUS_POLLS];
  }

  /** The longest pause between two ring polls since the last call, ms. */
  takeMaxPollGapMs(): number {
    const v = this.status[STATUS_MAX_POLL_GAP];
    this.status[STATUS_MAX_POLL_GAP] = 0;
    return v;
  }

  /** Reads what the producer has published now, then stops; resolves when the thread has exited. */
  async drain(): Promise<void> {
    Atomics.store(this.control, CTL_COMMAND, CMD_DRAIN);
    this.pool.wake();
    await Promise.race([this.lastWord, this.exited.then(() => new Promise((r) => setImmediate(r)))]);
    await this.exited;
  }

  abort(): Promise<void> {
    Atomics.store(this.control, CTL_COMMAND, CMD_ABORT);
    this.pool.wake();
    return this.exited;
  }
}
