/** Per-frame job: QC metrics on the frame in the pool, and its copy into the z-block being assembled. */
import { frameStats } from './kernels/stats.js';
import type { FrameResult, FrameTask } from './tasks.js';

export function runFrameTask(t: FrameTask): FrameResult {
  const t0 = performance.now();
  const n = t.width * t.height;
  const px = t.bytesPerPixel === 2
    ? new Uint16Array(t.frames, t.frameOffset, n)
    : new Uint8Array(t.frames, t.frameOffset, n);
  if (t.block) {
    new Uint8Array(t.block, t.blockOffset, n * t.bytesPerPixel).set(new Uint8Array(t.frames, t.frameOffset, n * t.bytesPerPixel));
  }
  const stats = frameStats(px, t.saturationLevel, t.offset);
  const signal = Math.max(0, stats.mean - t.offset);
  const qc = { ...stats, focus: {}, drift: null, signal, snr: 0 };
  return { qc, newReference: null, seconds: (performance.now() - t0) / 1000 };
}
