/**
 * Pyramid job: one sealed z-block's plane reductions (written by the frame tasks, or by the
 * previous level's reduce job) turned into the next level's planes, written chunk-major into that
 * level's z-block, with their own reductions for the level after (see kernels/pyramid.ts).
 */
import { combinePair, halfOf, reducePlane } from './kernels/pyramid.js';
import { writeTilesGeneric } from './kernels/tiles.js';
import type { ReduceTask } from './tasks.js';

let plane16 = new Uint16Array(0);
let plane8 = new Uint8Array(0);

export function runReduceTask(t: ReduceTask): number {
  const t0 = performance.now();
  const w2 = halfOf(t.width);
  const h2 = halfOf(t.height);
  const n2 = w2 * h2;
  const g = t.dst.geometry;
  let out: Uint16Array | Uint8Array;
  if (g.bytesPerPixel === 2) {
    if (plane16.length < n2) plane16 = new Uint16Array(n2);
    out = plane16.subarray(0, n2);
  } else {
    if (plane8.length < n2) plane8 = new Uint8Array(n2);
    out = plane8.subarray(0, n2);
  }
  const src = (z: number) => (t.present[z] ? new Uint32Array(t.src, z * n2 * 4, n2) : null);
  const nonZero = new Uint8Array(t.dst.nonZero);
  const outPlanes = t.halveZ ? halfOf(t.planes) : t.planes;
  const n3 = halfOf(w2) * halfOf(h2);
  for (let j = 0; j < outPlanes; j++) {
    if (t.halveZ)
      combinePair(src(2 * j), 2 * j + 1 < t.planes ? src(2 * j + 1) : null, 2 * j + 1 < t.planes, t.width, t.height, t.method, out);
    else combinePair(src(j), null, false, t.width, t.height, t.method, out);
    const z = t.dst.z0 + j;
    writeTilesGeneric(out, t.dst.block, z, g, nonZero);
    if (t.dst.ext) reducePlane(out, w2, h2, t.method, new Uint32Array(t.dst.ext, z * n3 * 4, n3));
  }
  return (performance.now() - t0) / 1000;
}
