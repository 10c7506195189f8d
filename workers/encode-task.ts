/** Chunk job: cut one inner chunk out of an assembled z-block and encode it with the chunk codec. */
import { encodeChunk, encodeChunkNumcodecs, wantsPreShuffled } from './codecs/chunk-codec.js';
import { shuffle16Words } from './codecs/shuffle.js';
import type { EncodeTask } from './tasks.js';

let scratch = new Uint8Array(0);
let shuffled = new Uint8Array(0);

/** Copies the tile's rows out of the z-block (memcpy per row; planes not present and edges stay 0). */
function extractTile(t: EncodeTask, raw: Uint8Array): void {
  const bpp = t.bytesPerPixel;
  const block = new Uint8Array(t.block);
  const rowBytes = Math.min(t.cx, t.width - t.x0) * bpp;
  const rows = Math.min(t.cy, t.height - t.y0);
  const planes = Math.min(t.cz, t.planes);
  if (rowBytes < t.cx * bpp || rows < t.cy || planes < t.cz || t.present.includes(0)) raw.fill(0);
  for (let z = 0; z < planes; z++) {
    if (!t.present[z]) continue;
    for (let y = 0; y < rows; y++) {
      const src = ((z * t.height + t.y0 + y) * t.width + t.x0) * bpp;
      raw.set(block.subarray(src, src + rowBytes), (z * t.cy + y) * t.cx * bpp);
    }
  }
}

/**
 * The tile copy and the byte shuffle in one pass, reading the z-block two samples per 32-bit load
 * (halves the slow SharedArrayBuffer loads) and storing low/high bytes two at a time. Needs even
 * tile widths and x0 (always true for the default chunks); returns false when all samples are 0.
 */
function extractShuffled16(t: EncodeTask, dst: Uint8Array): boolean {
  const elems = t.cz * t.cy * t.cx;
  const cols = Math.min(t.cx, t.width - t.x0);
  const rows = Math.min(t.cy, t.height - t.y0);
  const planes = Math.min(t.cz, t.planes);
  if (cols < t.cx || rows < t.cy || planes < t.cz || t.present.includes(0)) dst.fill(0);
  const src = new Uint32Array(t.block, 0, t.block.byteLength >> 2);
  const lo = new Uint16Array(dst.buffer, dst.byteOffset, elems >> 1);
  const hi = new Uint16Array(dst.buffer, dst.byteOffset + elems, elems >> 1);
  const words = cols >> 1;
  let any = 0;
  for (let z = 0; z < planes; z++) {
    if (!t.present[z]) continue;
    for (let y = 0; y < rows; y++) {
      let s = ((z * t.height + t.y0 + y) * t.width + t.x0) >> 1;
      let d = ((z * t.cy + y) * t.cx) >> 1;
      for (let i = 0; i < words; i++) {
        const w = src[s++];
        any |= w;
        lo[d] = (w & 0xff) | ((w >>> 8) & 0xff00);
        hi[d++] = ((w >>> 8) & 0xff) | ((w >>> 16) & 0xff00);
      }
    }
  }
  return any !== 0;
}

/** The numcodecs reference path: same tile extraction, encoded by zarrita's WASM c-blosc. */
export async function runEncodeTaskNumcodecs(t: EncodeTask): Promise<Uint8Array> {
  const raw = new Uint8Array(t.cz * t.cy * t.cx * t.bytesPerPixel);
  extractTile(t, raw);
  return raw.every((v) => v === 0) ? new Uint8Array(0) : encodeChunkNumcodecs(raw, t.codec);
}

/**
 * Returns the encoded chunk; an empty array means every sample is the fill value 0 (the chunk is then
 * not stored and the shard index marks it empty).
 */
export function runEncodeTask(t: EncodeTask): Uint8Array {
  const bpp = t.bytesPerPixel;
  const rawBytes = t.cz * t.cy * t.cx * bpp;
  if (scratch.length < rawBytes) scratch = new Uint8Array(rawBytes);
  const raw = scratch.subarray(0, rawBytes);
  if (bpp === 2 && rawBytes % 4 === 0 && wantsPreShuffled(t.codec, rawBytes, bpp)) {
    if (shuffled.length < rawBytes) shuffled = new Uint8Array(rawBytes);
    const sh = shuffled.subarray(0, rawBytes);
    const fusable = t.cx % 2 === 0 && t.x0 % 2 === 0 && t.width % 2 === 0 && Math.min(t.cx, t.width - t.x0) % 2 === 0;
    let nonZero: boolean;
    if (fusable) nonZero = extractShuffled16(t, sh);
    else {
      extractTile(t, raw);
      nonZero = shuffle16Words(raw, sh, rawBytes >> 1) !== 0;
    }
    return nonZero ? encodeChunk(sh, bpp, t.codec, true) : new Uint8Array(0);
  }
  extractTile(t, raw);
  let nonZero = false;
  for (let i = 0; i < rawBytes; i++) {
    if (raw[i] !== 0) {
      nonZero = true;
      break;
    }
  }
  return nonZero ? encodeChunk(raw, bpp, t.codec) : new Uint8Array(0);
}
