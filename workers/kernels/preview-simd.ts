/**
 * The preview of a uint16 frame binned 2 x 2 (2048² -> 1024², the default) in WebAssembly SIMD:
 * wasm/preview16.wat. The same bytes, window and saturated cells as binMean + percentileWindow +
 * toByte + saturatedIndices in preview.ts (the test compares bit-exact): in JS these cost ~10 ms per
 * 2048² preview, most of the preview thread (bench/qc-bench.ts has both rows). The frame is copied
 * into the kernel's memory a strip at a time.
 */
import { windowFromHistogram } from './preview.js';
import { ensureMemory, loadWasm, TWO_TABLE_HIST_BYTES } from './wasm-module.js';

interface PreviewKernel {
  memory: WebAssembly.Memory;
  bin2(inPtr: number, width: number, outRows: number, meanPtr: number, maxPtr: number): void;
  hist(inPtr: number, n: number, histPtr: number): void;
  tobyte(inPtr: number, n: number, lo: number, scale: number, outPtr: number): void;
  lookup(inPtr: number, n: number, lutPtr: number, outPtr: number): void;
  saturated(maxPtr: number, n: number, level: number, outPtr: number, cap: number): number;
}

const loaded = loadWasm<PreviewKernel>('preview16');
/** Input rows per copy (even): 64 rows of 2048 px = 256 KiB. */
const STRIP_ROWS = 64;
/** Where the 0..65535 ramp lies in the kernel's memory (-1: not written since the memory grew). */
let rampAt = -1;

/** True when `previewSimd` handles this preview (uint16, bin 2, width a multiple of 16, even height). */
export function previewSimdApplies(width: number, height: number, bin: number, bytesPerPixel: number): boolean {
  return loaded.kernel !== null && bytesPerPixel === 2 && bin === 2 && width % 16 === 0 && height % 2 === 0;
}

export interface SimdPreview {
  /** (width/2) x (height/2) bytes: a view of the kernel's memory, valid until the next call. */
  bytes: Uint8Array;
  lo: number;
  hi: number;
  /** Cells whose 2 x 2 block holds a sample >= the saturation level (null when not asked for). */
  saturated: Uint32Array | null;
}

/**
 * Bins px 2 x 2 and maps the means to 8 bit with `window` (null: the percentile window that clips
 * `clipPercent` at each end); lists saturated cells when `saturationLevel` is not null (at most cap).
 */
export function previewSimd(
  px: Uint16Array,
  width: number,
  height: number,
  window: [number, number] | null,
  clipPercent: number,
  saturationLevel: number | null,
  cap: number,
): SimdPreview {
  const k = loaded.kernel;
  if (!k) throw new Error(`SIMD preview kernel unavailable: ${loaded.why}`);
  const ow = width >> 1;
  const on = ow * (height >> 1);
  const IN = 0;
  const MEAN = STRIP_ROWS * width * 2;
  const MAX = MEAN + on * 2;
  const HIST = MAX + on * 2;
  const BYTES = HIST + TWO_TABLE_HIST_BYTES;
  const SAT = BYTES + on;
  const RAMP = SAT + cap * 4;
  const LUT = RAMP + 65536 * 2;
  if (k.memory.buffer.byteLength < LUT + 65536) {
    ensureMemory(k.memory, LUT + 65536);
    rampAt = -1;
  }
  const mem = new Uint8Array(k.memory.buffer);
  if (rampAt !== RAMP) {
    // The values 0..65535, mapped by `tobyte` into the table each preview's pixels are looked up in.
    const ramp = new Uint16Array(k.memory.buffer, RAMP, 65536);
    for (let v = 0; v < 65536; v++) ramp[v] = v;
    rampAt = RAMP;
  }
  const src = new Uint8Array(px.buffer, px.byteOffset, width * height * 2);
  for (let y0 = 0; y0 < height; y0 += STRIP_ROWS) {
    const rows = Math.min(STRIP_ROWS, height - y0);
    mem.set(src.subarray(y0 * width * 2, (y0 + rows) * width * 2), IN);
    const at = (y0 >> 1) * ow * 2;
    k.bin2(IN, width, rows >> 1, MEAN + at, MAX + at);
  }
  let lo: number;
  let hi: number;
  if (window) [lo, hi] = window;
  else {
    k.hist(MEAN, on, HIST);
    [lo, hi] = windowFromHistogram(new Uint32Array(k.memory.buffer, HIST, 65536), on, clipPercent);
  }
  k.tobyte(RAMP, 65536, lo, 255 / (hi - lo), LUT);
  k.lookup(MEAN, on, LUT, BYTES);
  const bytes = mem.subarray(BYTES, BYTES + on);
  let saturated: Uint32Array | null = null;
  if (saturationLevel !== null) {
    if (saturationLevel > 65535) saturated = new Uint32Array(0);
    else {
      const count = k.saturated(MAX, on, Math.max(0, Math.ceil(saturationLevel)), SAT, cap);
      saturated = new Uint32Array(k.memory.buffer, SAT, Math.min(count, cap)).slice();
    }
  }
  return { bytes, lo, hi, saturated };
}
