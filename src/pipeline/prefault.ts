/**
 * Makes the pages of large shared buffers resident before they are needed: a short-lived thread of
 * its own touches one word per 4 KiB page. The kernel zero-fills a page on its first write; for the
 * ~1.3 GiB of frame pool, z-block pool and output slab that is seconds of CPU on a VM (10 µs a page
 * measured here), which an acquisition's first frame tasks would otherwise pay while frames arrive.
 * The touch is `Atomics.add(word, 0)`: a write that never changes a value, so buffers already in use
 * (the frame pool fills as soon as the ring is attached) are safe to touch. Pages it did not reach
 * when stopped are faulted in by their first frames, as without it.
 */
import { Worker } from 'node:worker_threads';

const PAGE = 4096;
/** Pages between two looks at the stop flag (1 MiB). */
const CHECK_EVERY = 256;

// Plain JS evaluated in the thread (no module to resolve from dist or from the TS sources), at the
// lowest priority (nice 19: on Linux a thread's own), looking at the stop flag every MiB.
const TOUCH = `
const { parentPort, workerData } = require('node:worker_threads');
try { require('node:os').setPriority(0, 19); } catch {}
const stop = new Int32Array(workerData.stop);
let bytes = 0;
let stopped = false;
for (const b of workerData.buffers) {
  const words = new Int32Array(b, 0, b.byteLength >> 2);
  let i = 0;
  for (; i < words.length; i += ${PAGE / 4}) {
    if (i % ${(CHECK_EVERY * PAGE) / 4} === 0 && Atomics.load(stop, 0) !== 0) { stopped = true; break; }
    Atomics.add(words, i, 0);
  }
  bytes += Math.min(b.byteLength, i * 4);
  if (stopped) break;
}
parentPort.postMessage({ bytes, stopped });
`;

export interface PrefaultResult {
  /** Bytes made resident (all of them unless stopped). */
  bytes: number;
  total: number;
  seconds: number;
  stopped: boolean;
}

export interface Prefault {
  done: Promise<PrefaultResult>;
  /** Stops touching (the acquisition started: its frames should not share the CPU with this). */
  stop(): void;
}

/**
 * Touches every page of `buffers` in a thread of its own until done or stopped. The thread does not
 * keep the process alive (a stop does not wait for it).
 */
export function prefault(buffers: SharedArrayBuffer[]): Prefault {
  const t0 = performance.now();
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const total = buffers.reduce((s, b) => s + b.byteLength, 0);
  const done = new Promise<PrefaultResult>((resolve, reject) => {
    const w = new Worker(TOUCH, { eval: true, workerData: { buffers, stop: stop.buffer } });
    w.unref();
    w.once('message', (r: { bytes: number; stopped: boolean }) => resolve({ ...r, total, seconds: (performance.now() - t0) / 1000 }));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`prefault thread exited with code ${code}`)));
  });
  return { done, stop: () => Atomics.store(stop, 0, 1) };
}
