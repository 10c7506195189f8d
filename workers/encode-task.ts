/** Chunk job: cut one inner chunk out of an assembled z-block and encode it with the chunk codec. */
import { encodeChunk } from './codecs/chunk-codec.js';
import type { EncodeResult, EncodeTask } from './tasks.js';

let scratch = new Uint8Array(0);

export function runEncodeTask(t: EncodeTask): EncodeResult {
  const t0 = performance.now();
  const bpp = t.bytesPerPixel;
  const rawBytes = t.cz * t.cy * t.cx * bpp;
  if (scratch.length < rawBytes) scratch = new Uint8Array(rawBytes);
  const raw = scratch.subarray(0, rawBytes);
  const block = new Uint8Array(t.block);
  const rowBytes = Math.min(t.cx, t.width - t.x0) * bpp;
  const rows = Math.min(t.cy, t.height - t.y0);
  const planes = Math.min(t.cz, t.planes);
  let nonZero = false;
  // Edge chunks and missing planes keep the fill value 0.
  if (rowBytes < t.cx * bpp || rows < t.cy || planes < t.cz || t.present.includes(0)) raw.fill(0);
  for (let z = 0; z < planes; z++) {
    if (!t.present[z]) continue;
    for (let y = 0; y < rows; y++) {
      const src = ((z * t.height + t.y0 + y) * t.width + t.x0) * bpp;
      const dst = (z * t.cy + y) * t.cx * bpp;
      raw.set(block.subarray(src, src + rowBytes), dst);
    }
  }
  for (let i = 0; i < rawBytes; i++) {
    if (raw[i] !== 0) { nonZero = true; break; }
  }
  const bytes = nonZero ? encodeChunk(raw, bpp, t.codec) : new Uint8Array(0);
  return { bytes, rawBytes, seconds: (performance.now() - t0) / 1000, empty: !nonZero };
}
