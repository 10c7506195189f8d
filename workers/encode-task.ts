/** Chunk job: cut one inner chunk out of an assembled z-block and encode it with the chunk codec. */
import { encodeChunk, wantsPreShuffled } from './codecs/chunk-codec.js';
import type { EncodeResult, EncodeTask } from './tasks.js';

let scratch = new Uint8Array(0);

/**
 * Copies the tile's rows out of the z-block straight into byte-shuffled order (all low bytes, then
 * all high bytes): the tile copy and the Blosc shuffle in one pass. Returns false when every sample
 * is 0 (the chunk is then not stored). Requires even widths in whole 32-bit words or falls back.
 */
function extractShuffled16(t: EncodeTask, block: SharedArrayBuffer, dst: Uint8Array): boolean {
  const elems = t.cz * t.cy * t.cx;
  const cols = Math.min(t.cx, t.width - t.x0);
  const rows = Math.min(t.cy, t.height - t.y0);
  const src = new Uint16Array(block);
  const lo = dst.subarray(0, elems);
  const hi = dst.subarray(elems, 2 * elems);
  if (cols < t.cx || rows < t.cy || t.present.includes(0) || t.planes < t.cz) dst.fill(0);
  let any = 0;
  for (let z = 0; z < Math.min(t.cz, t.planes); z++) {
    if (!t.present[z]) continue;
    for (let y = 0; y < rows; y++) {
      let s = (z * t.height + t.y0 + y) * t.width + t.x0;
      let d = (z * t.cy + y) * t.cx;
      for (let x = 0; x < cols; x++) {
        const v = src[s++];
        lo[d] = v;
        hi[d++] = v >>> 8;
        any |= v;
      }
    }
  }
  return any !== 0;
}

export function runEncodeTask(t: EncodeTask): EncodeResult {
  const t0 = performance.now();
  const bpp = t.bytesPerPixel;
  const rawBytes = t.cz * t.cy * t.cx * bpp;
  if (scratch.length < rawBytes) scratch = new Uint8Array(rawBytes);
  const raw = scratch.subarray(0, rawBytes);
  if (bpp === 2 && wantsPreShuffled(t.codec, rawBytes, bpp)) {
    const nonZero = extractShuffled16(t, t.block, raw);
    const bytes = nonZero ? encodeChunk(raw, bpp, t.codec, true) : new Uint8Array(0);
    return { bytes, rawBytes, seconds: (performance.now() - t0) / 1000, empty: !nonZero };
  }
  const block = new Uint8Array(t.block);
  const rowBytes = Math.min(t.cx, t.width - t.x0) * bpp;
  const rows = Math.min(t.cy, t.height - t.y0);
  const planes = Math.min(t.cz, t.planes);
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
  let nonZero = false;
  for (let i = 0; i < rawBytes; i++) {
    if (raw[i] !== 0) {
      nonZero = true;
      break;
    }
  }
  const bytes = nonZero ? encodeChunk(raw, bpp, t.codec) : new Uint8Array(0);
  return { bytes, rawBytes, seconds: (performance.now() - t0) / 1000, empty: !nonZero };
}
