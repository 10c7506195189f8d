/**
 * Makes the pages of large shared buffers resident before they are needed: a short-lived thread of
 * its own touches one word per 4 KiB page. The kernel zero-fills a page on its first write; for the
 * ~1.3 GiB of frame pool, z-block pool and output slab that is seconds of CPU on a VM (10 µs a page
 * measured here), which an acquisition's first frame tasks would otherwise pay while frames arrive.
 * The touch is `Atomics.add(word, 0)`: a write that never changes a value, so buffers already in use
 * (the frame pool fills as soon as the ring is attached) are safe to touch.
 */
import { Worker } from 'node:worker_threads';

const PAGE = 4096;

// Plain JS evaluated in the thread (no module to resolve from dist or from the TS sources).
const TOUCH = `
const { parentPort, workerData } = require('node:worker_threads');
let bytes = 0;
for (const b of workerData.buffers) {
  const words = new Int32Array(b, 0, b.byteLength >> 2);
  for (let i = 0; i < words.length; i += ${PAGE / 4}) Atomics.add(words, i, 0);
  bytes += b.byteLength;
}
parentPort.postMessage(bytes);
`;

export interface PrefaultResult {
  bytes: number;
  seconds: number;
}

/**
 * Touches every page of `buffers` in a thread of its own; resolves when done. The thread does not
 * keep the process alive (a stop does not wait for it).
 */
export function prefault(buffers: SharedArrayBuffer[]): Promise<PrefaultResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const w = new Worker(TOUCH, { eval: true, workerData: { buffers } });
    w.unref();
    w.once('message', (bytes: number) => resolve({ bytes, seconds: (performance.now() - t0) / 1000 }));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`prefault thread exited with code ${code}`)));
  });
}
