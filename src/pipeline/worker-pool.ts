/** The piscina pool that runs every per-pixel job; workers come from the compiled `dist/workers`. */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { PACKAGE_ROOT } from '../package-info.js';
import { Piscina } from 'piscina';
// Held by the main thread so libvips is never unloaded while a preview thread that used it exits
// with libvips threads still running: sharp's rule for worker threads (lovell/sharp#2263).
import 'sharp';
import { TwoLevelTaskQueue, urgent } from './task-queue.js';
import {
  type EncodeTask,
  type FrameResult,
  type FrameTask,
  type PreviewResult,
  type PreviewTask,
  type ReduceTask,
  WORKER_LOADED,
} from '../../workers/tasks.js';

/** How long a stop waits for threads still loading their modules before terminating them anyway. */
const LOAD_WAIT_MS = 30_000;

/** Finds dist/workers/pipeline-worker.js from either the compiled tree or the TS sources (tests). */
export function workerFile(): string {
  const file = path.join(PACKAGE_ROOT, 'dist', 'workers', 'pipeline-worker.js');
  if (!fs.existsSync(file)) throw new Error(`cannot find ${file}: run \`npm run build\` first`);
  return file;
}

export class WorkerPool {
  private readonly pool: Piscina;
  /**
   * Previews get their own thread: in the shared FIFO they waited behind every queued QC and encode
   * task (p99 > 700 ms at 300 MB/s). A preview is at most one per watched stream at a time.
   */
  private readonly previewPool: Piscina;

  /** Threads of the pool that runs frame, encode and reduce tasks. */
  readonly threads: number;
  /** Threads that said their modules are loaded (WORKER_LOADED), and who waits for that. */
  private readonly loaded = new Set<number>();
  private loadChanged: (() => void) | null = null;

  constructor(threads: number) {
    const n = threads > 0 ? threads : Math.max(1, os.availableParallelism());
    this.threads = n;
    this.pool = new Piscina({
      filename: workerFile(),
      minThreads: n,
      maxThreads: n,
      idleTimeout: 60_000,
      taskQueue: new TwoLevelTaskQueue(),
      workerData: { pool: 'pipeline' },
    });
    this.previewPool = new Piscina({
      filename: workerFile(),
      minThreads: 1,
      maxThreads: 1,
      // One preview at a time: the SIMD preview's bytes stay in its kernel memory while sharp encodes.
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
      workerData: { pool: 'preview' },
    });
    for (const p of [this.pool, this.previewPool]) {
      p.on('message', (m: unknown) => {
        const id = (m as Record<string, unknown> | null)?.[WORKER_LOADED];
        if (typeof id === 'number') this.loaded.add(id);
        this.loadChanged?.();
      });
      p.on('workerDestroy', () => this.loadChanged?.());
    }
  }

  /** Per-frame QC (and the stored frame's write into its z-block): ahead of every queued encode. */
  frame(t: FrameTask): Promise<FrameResult> {
    return this.pool.run(urgent(t)) as Promise<FrameResult>;
  }

  /**
   * Resolves to the encoded chunk's length in the task's output slot, or to the chunk itself when it
   * did not fit there; length 0 / an empty array means "all fill value, not stored".
   */
  encode(t: EncodeTask): Promise<number | Uint8Array> {
    return this.pool.run(t) as Promise<number | Uint8Array>;
  }

  /** One pyramid step of a sealed z-block; resolves to its seconds of work. */
  reduce(t: ReduceTask): Promise<number> {
    return this.pool.run(t) as Promise<number>;
  }

  preview(t: PreviewTask): Promise<PreviewResult> {
    return this.previewPool.run(t) as Promise<PreviewResult>;
  }

  /** Threads of both pools that said their modules are loaded, since the pool was made. */
  get loadedThreads(): number {
    return this.loaded.size;
  }

  /** Every live thread of both pools has loaded its modules. */
  private get allLoaded(): boolean {
    return [this.pool, this.previewPool].every((p) => p.threads.every((w) => this.loaded.has(w.threadId)));
  }

  /**
   * Waits for threads still loading their modules (a stop right after start): Node 20 aborts the
   * whole process when a thread is terminated during ES module instantiation (a fatal V8 error,
   * reproduced here by closing a fresh pool at random moments under load).
   */
  async close(): Promise<void> {
    if (!this.allLoaded)
      await new Promise<void>((resolve) => {
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          this.loadChanged?.();
        }, LOAD_WAIT_MS);
        this.loadChanged = () => {
          if (!this.allLoaded && !timedOut) return;
          clearTimeout(timer);
          this.loadChanged = null;
          resolve();
        };
      });
    await Promise.all([this.pool.destroy(), this.previewPool.destroy()]);
  }
}
