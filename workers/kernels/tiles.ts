/**
 * Chunk-major z-block layout: the frame-task writes each plane straight into the bytes its inner
 * chunks will be encoded from, so the encoder compresses one contiguous region per chunk with no
 * extraction pass. Tile t = ty * tilesX + tx occupies [t * chunkBytes, (t + 1) * chunkBytes); inside,
 * element e = (z * cy + y) * cx + x is stored either plainly (e * bpp) or byte-shuffled as Blosc
 * does for a whole-chunk block (all low bytes, then all high bytes). Samples outside the array
 * (edge tiles) are never written and stay 0, the fill value.
 */

export interface TileGeometry {
  width: number;
  height: number;
  bytesPerPixel: number;
  cz: number;
  cy: number;
  cx: number;
  tilesX: number;
  tilesY: number;
  /** Byte-shuffled (uint16 + blosc with one block per chunk) or plain. */
  shuffled: boolean;
}

export function chunkBytesOf(g: TileGeometry): number {
  return g.cz * g.cy * g.cx * g.bytesPerPixel;
}

/** True when the fused uint16 kernel applies (four samples per step never straddle a tile row). */
function fusable(g: TileGeometry, px: Uint16Array | Uint8Array): px is Uint16Array {
  return px instanceof Uint16Array && g.bytesPerPixel === 2 && g.width % 4 === 0 && g.cx % 4 === 0 && px.byteOffset % 4 === 0;
}

/**
 * One pass over a uint16 frame: the full-resolution histogram (added into `hist`) and plane z of
 * every tile written into `block`. `nonZero[t]` is set to 1 when tile t received a non-zero sample,
 * so the encoder knows empty chunks without reading them. Falls back to two simple passes for
 * uint8 frames or odd widths. `sums` (the pyramid's mean, halfOf(w) x halfOf(h)): when given, the
 * fused pass also leaves each 2 x 2 window's sum there (returns true; false = not done here).
 */
export function histogramToTiles(
  px: Uint16Array | Uint8Array,
  hist: Uint32Array,
  block: SharedArrayBuffer,
  z: number,
  g: TileGeometry,
  nonZero: Uint8Array,
  sums: Uint32Array | null = null,
): boolean {
  if (px instanceof Uint8Array && g.bytesPerPixel === 1 && g.width % 4 === 0 && g.cx % 4 === 0 && px.byteOffset % 4 === 0) {
    histogramToTiles8(px, hist, block, z, g, nonZero);
    return false;
  }
  if (!fusable(g, px)) {
    for (let i = 0; i < px.length; i++) hist[px[i]]++;
    writeTilesGeneric(px, block, z, g, nonZero);
    return false;
  }
  const w2 = g.width >> 1;
  const src = new Uint32Array(px.buffer, px.byteOffset, px.length >> 1);
  const h = hist;
  const chunkBytes = chunkBytesOf(g);
  const elems = g.cz * g.cy * g.cx;
  const planeElems = g.cy * g.cx;
  const rowWords = g.width >> 1;
  for (let ty = 0; ty < g.tilesY; ty++) {
    const rows = Math.min(g.cy, g.height - ty * g.cy);
    for (let tx = 0; tx < g.tilesX; tx++) {
      const t = ty * g.tilesX + tx;
      const words = Math.min(g.cx, g.width - tx * g.cx) >> 1;
      const base = t * chunkBytes;
      let any = 0;
      if (g.shuffled) {
        // Four samples per step: two 32-bit loads, one 32-bit store of their low bytes and one of
        // their high bytes (~20 % faster than 16-bit stores, measured).
        const lo = new Uint32Array(block, base + z * planeElems, planeElems >> 2);
        const hi = new Uint32Array(block, base + elems + z * planeElems, planeElems >> 2);
        for (let y = 0; y < rows; y++) {
          const Y = ty * g.cy + y;
          let s = Y * rowWords + ((tx * g.cx) >> 1);
          let d = (y * g.cx) >> 2;
          if (sums) {
            // Rows are visited top to bottom: an even row starts its windows' sums, the odd one adds.
            any |= shuffledRowWithSums(src, s, lo, hi, d, words, h, sums, (Y >> 1) * w2 + ((tx * g.cx) >> 1), (Y & 1) === 1);
            continue;
          }
          for (let i = 0; i < words; i += 2) {
            const w = src[s];
            const x = src[s + 1];
            s += 2;
            any |= w | x;
            h[w & 0xffff]++;
            h[w >>> 16]++;
            h[x & 0xffff]++;
            h[x >>> 16]++;
            lo[d] = (w & 0xff) | ((w >>> 8) & 0xff00) | ((x & 0xff) << 16) | ((x << 8) & 0xff000000);
            hi[d++] = ((w >>> 8) & 0xff) | ((w >>> 16) & 0xff00) | ((x << 8) & 0xff0000) | (x & 0xff000000);
          }
        }
      } else {
        const dst = new Uint32Array(block, base + z * planeElems * 2, planeElems >> 1);
        for (let y = 0; y < rows; y++) {
          const Y = ty * g.cy + y;
          let s = Y * rowWords + ((tx * g.cx) >> 1);
          let d = (y * g.cx) >> 1;
          let e = (Y >> 1) * w2 + ((tx * g.cx) >> 1);
          const odd = (Y & 1) === 1;
          for (let i = 0; i < words; i++) {
            const w = src[s++];
            any |= w;
            h[w & 0xffff]++;
            h[w >>> 16]++;
            dst[d++] = w;
            if (sums) {
              const v = (w & 0xffff) + (w >>> 16);
              sums[e] = odd ? sums[e] + v : v;
              e++;
            }
          }
        }
      }
      if (any !== 0) nonZero[t] = 1;
    }
  }
  return sums !== null;
}

/**
 * One row segment of the shuffled fused pass that also sums horizontal pairs into `sums` from `e`.
 * A copy of the loop above plus the sums: folding both into one loop with a `sums` branch made the
 * storing pass without a pyramid ~15 % slower (measured with frames out of cache).
 */
function shuffledRowWithSums(
  src: Uint32Array,
  s: number,
  lo: Uint32Array,
  hi: Uint32Array,
  d: number,
  words: number,
  h: Uint32Array,
  sums: Uint32Array,
  e: number,
  add: boolean,
): number {
  let any = 0;
  for (let i = 0; i < words; i += 2) {
    const w = src[s];
    const x = src[s + 1];
    s += 2;
    any |= w | x;
    h[w & 0xffff]++;
    h[w >>> 16]++;
    h[x & 0xffff]++;
    h[x >>> 16]++;
    lo[d] = (w & 0xff) | ((w >>> 8) & 0xff00) | ((x & 0xff) << 16) | ((x << 8) & 0xff000000);
    hi[d++] = ((w >>> 8) & 0xff) | ((w >>> 16) & 0xff00) | ((x << 8) & 0xff0000) | (x & 0xff000000);
    const a = (w & 0xffff) + (w >>> 16);
    const b = (x & 0xffff) + (x >>> 16);
    if (add) {
      sums[e] += a;
      sums[e + 1] += b;
    } else {
      sums[e] = a;
      sums[e + 1] = b;
    }
    e += 2;
  }
  return any;
}

/** uint8 frames: four samples per 32-bit load and store (a byte shuffle of typesize 1 is the identity). */
function histogramToTiles8(
  px: Uint8Array,
  hist: Uint32Array,
  block: SharedArrayBuffer,
  z: number,
  g: TileGeometry,
  nonZero: Uint8Array,
): void {
  const src = new Uint32Array(px.buffer, px.byteOffset, px.length >> 2);
  const h = hist;
  const chunkBytes = chunkBytesOf(g);
  const planeElems = g.cy * g.cx;
  const rowWords = g.width >> 2;
  for (let ty = 0; ty < g.tilesY; ty++) {
    const rows = Math.min(g.cy, g.height - ty * g.cy);
    for (let tx = 0; tx < g.tilesX; tx++) {
      const t = ty * g.tilesX + tx;
      const words = Math.min(g.cx, g.width - tx * g.cx) >> 2;
      const dst = new Uint32Array(block, t * chunkBytes + z * planeElems, planeElems >> 2);
      let any = 0;
      for (let y = 0; y < rows; y++) {
        let s = (ty * g.cy + y) * rowWords + ((tx * g.cx) >> 2);
        let d = (y * g.cx) >> 2;
        for (let i = 0; i < words; i++) {
          const w = src[s++];
          any |= w;
          h[w & 0xff]++;
          h[(w >>> 8) & 0xff]++;
          h[(w >>> 16) & 0xff]++;
          h[w >>> 24]++;
          dst[d++] = w;
        }
      }
      if (any !== 0) nonZero[t] = 1;
    }
  }
}

/** Any dtype and width: per-sample copy of plane z into every tile. */
export function writeTilesGeneric(
  px: Uint16Array | Uint8Array,
  block: SharedArrayBuffer,
  z: number,
  g: TileGeometry,
  nonZero: Uint8Array,
): void {
  const chunkBytes = chunkBytesOf(g);
  const elems = g.cz * g.cy * g.cx;
  const bytes = new Uint8Array(block);
  for (let ty = 0; ty < g.tilesY; ty++) {
    const rows = Math.min(g.cy, g.height - ty * g.cy);
    for (let tx = 0; tx < g.tilesX; tx++) {
      const t = ty * g.tilesX + tx;
      const cols = Math.min(g.cx, g.width - tx * g.cx);
      const base = t * chunkBytes;
      let any = 0;
      for (let y = 0; y < rows; y++) {
        const s = (ty * g.cy + y) * g.width + tx * g.cx;
        const e = base + (z * g.cy + y) * g.cx;
        // One branch per row, none per sample.
        if (g.bytesPerPixel === 1) {
          for (let x = 0; x < cols; x++) {
            const v = px[s + x];
            any |= v;
            bytes[e + x] = v;
          }
        } else if (g.shuffled) {
          for (let x = 0; x < cols; x++) {
            const v = px[s + x];
            any |= v;
            bytes[e + x] = v;
            bytes[e + elems + x] = v >>> 8;
          }
        } else {
          const e2 = base + 2 * (e - base);
          for (let x = 0; x < cols; x++) {
            const v = px[s + x];
            any |= v;
            bytes[e2 + 2 * x] = v;
            bytes[e2 + 2 * x + 1] = v >>> 8;
          }
        }
      }
      if (any !== 0) nonZero[t] = 1;
    }
  }
}

/** Fills plane z of one tile with 0 (a frame that never arrived, or a block buffer being reused). */
export function zeroTilePlane(region: Uint8Array, z: number, g: TileGeometry): void {
  const planeElems = g.cy * g.cx;
  if (g.shuffled) {
    const elems = g.cz * planeElems;
    region.fill(0, z * planeElems, (z + 1) * planeElems);
    region.fill(0, elems + z * planeElems, elems + (z + 1) * planeElems);
  } else {
    region.fill(0, z * planeElems * g.bytesPerPixel, (z + 1) * planeElems * g.bytesPerPixel);
  }
}
