/**
 * The worker pool's stop: Node 20 aborts the whole process (a fatal V8 error, "Empty MaybeLocal")
 * when a thread is terminated while it instantiates its ES modules, so a stop right after start
 * waits until every thread has loaded them. Reproduced before the fix by closing fresh pools at
 * random moments under load (1 abort in ~200); a CI run lost a test process to it.
 */
import { describe, expect, it } from 'vitest';
import { WorkerPool } from '../src/pipeline/worker-pool.js';

describe('WorkerPool.close', () => {
  it('right after start, terminates the threads only once each has loaded its modules', async () => {
    const pool = new WorkerPool(2);
    expect(pool.loadedThreads, 'nothing loads in the same tick').toBe(0);
    await pool.close();
    // Two pipeline threads and the preview thread.
    expect(pool.loadedThreads).toBe(3);
  });

  it('once loaded and used, closes at once and runs nothing after', async () => {
    const pool = new WorkerPool(1);
    const r = await pool.reduce({ kind: 'unknown' } as never).catch((e: Error) => e.message);
    expect(r).toMatch(/unknown task "unknown"/);
    await pool.close();
    expect(pool.loadedThreads).toBe(2);
  });
});
