/**
 * The stored frame's fused pass (histogram + Blosc byte shuffle into the chunk-major z-block) in
 * WebAssembly SIMD: wasm/tiles16.wat, assembled at build time. Same contract and bytes as
 * `histogramToTiles` in tiles.ts (the test compares both bit-exact). WebAssembly reads only its own
 * memory, so each strip of one tile row is copied in and each tile's two byte planes copied out:
 * 2 ms of copies for a 2048² frame against 10 ms saved (bench/qc-bench.ts has both rows).
 */
import { chunkBytesOf, type TileGeometry } from './tiles.js';
import { ensureMemory, loadWasm, TWO_TABLE_HIST_BYTES } from './wasm-module.js';

interface StripKernel {
  memory: WebAssembly.Memory;
  strip(
    inPtr: number,
    width: number,
    rows: number,
    cx: number,
    outPtr: number,
    tileStride: number,
    hiOffset: number,
    histPtr: number,
    anyPtr: number,
    y0: number,
    histEvery: number,
  ): void;
  fold(histPtr: number): void;
  zero(ptr: number, n: number): void;
  colmax(inPtr: number, width: number, rows: number, colPtr: number): void;
  binrow(colPtr: number, width: number, step: number, outPtr: number): void;
}

/** The live volume's plane, binned by max in the same pass (`binMaxPlane` in preview.ts is the reference). */
export interface VolumePlane {
  step: number;
  /** ceil(width / step) x ceil(height / step) */
  out: Uint16Array;
}

/**
 * Rows per kernel call: 64 rows of 2048 px = 256 KiB in and out, a quarter of the scratch a whole
 * tile row needs (alone on a core, 256, 64 and 32 rows measured the same within noise).
 */
const STRIP_ROWS = 64;

const loaded = loadWasm<StripKernel>('tiles16');

/** Why the SIMD kernel cannot run here ('' when it can). */
export function simdUnavailableReason(): string {
  return loaded.why;
}

/** True when `histogramToTilesSimd` handles this frame (uint16, shuffled, widths in 16-sample steps). */
export function simdApplies(px: Uint16Array | Uint8Array, g: TileGeometry): px is Uint16Array {
  return (
    loaded.kernel !== null && px instanceof Uint16Array && g.bytesPerPixel === 2 && g.shuffled && g.width % 16 === 0 && g.cx % 16 === 0
  );
}

/**
 * Histogram of px and plane z of every tile written into `block` (nonZero[t] set for a tile with a
 * non-zero sample). Returns the histogram: a view of the kernel's memory, valid until the next call.
 * `histEvery` > 1: only every histEvery-th row enters the histogram (QC sampled under load: the
 * shuffle is the storage, the histogram is most of the cost); `histogramRows` says how many did.
 */
export function histogramToTilesSimd(
  px: Uint16Array,
  block: SharedArrayBuffer,
  z: number,
  g: TileGeometry,
  nonZero: Uint8Array,
  histEvery = 1,
  volume: VolumePlane | null = null,
): Uint32Array {
  const k = loaded.kernel;
  if (!k) throw new Error(`SIMD kernel unavailable: ${loaded.why}`);
  const sub = Math.min(g.cy, STRIP_ROWS);
  const stripBytes = sub * g.width * 2;
  const IN = 0;
  const OUT = stripBytes;
  const HIST = OUT + g.tilesX * sub * g.cx * 2;
  const ANY = HIST + TWO_TABLE_HIST_BYTES;
  const COL = ANY + g.tilesX * 4;
  const VROW = COL + g.width * 2;
  const ow = volume ? Math.ceil(g.width / volume.step) : 0;
  const need = VROW + ow * 2;
  ensureMemory(k.memory, need);
  const mem = new Uint8Array(k.memory.buffer);
  const any = new Uint32Array(k.memory.buffer, ANY, g.tilesX);
  const src = new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
  const dst = new Uint8Array(block);
  const chunkBytes = chunkBytesOf(g);
  const planeElems = g.cy * g.cx;
  const elems = g.cz * planeElems;
  k.zero(HIST, TWO_TABLE_HIST_BYTES);
  if (volume) k.zero(COL, g.width * 2);
  for (let ty = 0; ty < g.tilesY; ty++) {
    const tileRows = Math.min(g.cy, g.height - ty * g.cy);
    any.fill(0);
    // Sub-strips of STRIP_ROWS rows (the kernel ORs each tile's samples into `any` across them).
    for (let y0 = 0; y0 < tileRows; y0 += sub) {
      const rows = Math.min(sub, tileRows - y0);
      const from = (ty * g.cy + y0) * g.width * 2;
      mem.set(src.subarray(from, from + rows * g.width * 2), IN);
      k.strip(IN, g.width, rows, g.cx, OUT, 2 * rows * g.cx, rows * g.cx, HIST, ANY, ty * g.cy + y0, Math.max(1, histEvery));
      if (volume) binStrip(k, volume, ty * g.cy + y0, rows, g, IN, COL, VROW, ow);
      for (let tx = 0; tx < g.tilesX; tx++) {
        const lo = OUT + tx * 2 * rows * g.cx;
        const hi = lo + rows * g.cx;
        const base = (ty * g.tilesX + tx) * chunkBytes + z * planeElems + y0 * g.cx;
        const cols = Math.min(g.cx, g.width - tx * g.cx);
        if (cols === g.cx) {
          dst.set(mem.subarray(lo, hi), base);
          dst.set(mem.subarray(hi, hi + rows * g.cx), base + elems);
        } else {
          // An edge tile: only its columns inside the array; the rest of each row stays 0 (the fill value).
          for (let y = 0; y < rows; y++) {
            dst.set(mem.subarray(lo + y * g.cx, lo + y * g.cx + cols), base + y * g.cx);
            dst.set(mem.subarray(hi + y * g.cx, hi + y * g.cx + cols), base + elems + y * g.cx);
          }
        }
      }
    }
    for (let tx = 0; tx < g.tilesX; tx++) if (any[tx] !== 0) nonZero[ty * g.tilesX + tx] = 1;
  }
  k.fold(HIST);
  return new Uint32Array(k.memory.buffer, HIST, 65536);
}

/** Max-bins the strip in kernel memory (frame rows y..y+rows) into the volume plane, row group by row group. */
function binStrip(
  k: StripKernel,
  v: VolumePlane,
  y: number,
  rows: number,
  g: { width: number; height: number },
  IN: number,
  COL: number,
  VROW: number,
  ow: number,
): void {
  for (let r = 0; r < rows; ) {
    const end = Math.min(rows, r + v.step - ((y + r) % v.step));
    k.colmax(IN + r * g.width * 2, g.width, end - r, COL);
    r = end;
    if ((y + r) % v.step === 0 || y + r === g.height) {
      k.binrow(COL, g.width, v.step, VROW);
      const oy = Math.floor((y + r - 1) / v.step);
      v.out.set(new Uint16Array(k.memory.buffer, VROW, ow), oy * ow);
    }
  }
}

/**
 * The live volume's plane on its own, for frames off the stored SIMD path (pyramid on, storage off):
 * the same kernels over strips copied in (0.6 ms for a 2048² frame here, against 6.7 ms in JS). False where it does not apply
 * (no kernel, or a width not a multiple of 8): the caller runs the JS kernel.
 */
export function binMaxPlaneSimd(px: Uint16Array, width: number, height: number, v: VolumePlane): boolean {
  const k = loaded.kernel;
  if (!k || width % 8 !== 0) return false;
  const IN = 0;
  const COL = STRIP_ROWS * width * 2;
  const VROW = COL + width * 2;
  const ow = Math.ceil(width / v.step);
  const need = VROW + ow * 2;
  ensureMemory(k.memory, need);
  const mem = new Uint8Array(k.memory.buffer);
  const src = new Uint8Array(px.buffer, px.byteOffset, width * height * 2);
  k.zero(COL, width * 2);
  for (let y0 = 0; y0 < height; y0 += STRIP_ROWS) {
    const rows = Math.min(STRIP_ROWS, height - y0);
    mem.set(src.subarray(y0 * width * 2, (y0 + rows) * width * 2), IN);
    binStrip(k, v, y0, rows, { width, height }, IN, COL, VROW, ow);
  }
  return true;
}

/** Rows of a height-row frame that enter the histogram at `histEvery` (rows 0, histEvery, ...). */
export function histogramRows(height: number, histEvery: number): number {
  return Math.ceil(height / Math.max(1, histEvery));
}
