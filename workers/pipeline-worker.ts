/**
 * Piscina entry: one worker module serves every per-pixel job (QC, chunk encoding, pyramid, previews) so
 * that the pool balances them; each job lives in its own file.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { move, workerData } from 'piscina';
import { nameThisThread } from '../src/ingest/thread-cpu.js';
import { runFrameTask } from './frame-task.js';
import { runEncodeTask, runEncodeTaskAsync } from './encode-task.js';
import { runPreviewTask } from './preview-task.js';
import { runReduceTask } from './reduce-task.js';
import { type Task, WORKER_LOADED } from './tasks.js';

// top -H / ps -L and spimstream_thread_cpu_seconds_total tell the two pools apart by name.
nameThisThread((workerData as { pool?: string } | undefined)?.pool === 'preview' ? 'spim-preview' : 'spim-worker');
// After the loader's steps that follow this module's body (require of ESM then builds a facade);
// not setImmediate: an idle piscina thread blocks in Atomics.wait.
queueMicrotask(() => parentPort?.postMessage({ [WORKER_LOADED]: threadId }));

export default async function handle(task: Task): Promise<unknown> {
  switch (task.kind) {
    case 'frame':
      return runFrameTask(task);
    case 'encode':
      // The encoded chunk is transferred, not cloned: ~1/3 of every stored byte crosses back here.
      if (task.codec.async) return move(await runEncodeTaskAsync(task));
      {
        const r = runEncodeTask(task);
        return typeof r === 'number' ? r : move(r);
      }
    case 'preview':
      return runPreviewTask(task);
    case 'reduce':
      return runReduceTask(task);
    default:
      throw new Error(`unknown task ${JSON.stringify((task as { kind: string }).kind)}`);
  }
}
