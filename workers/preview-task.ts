/**
 * Preview job: bin the frame (or the stack MIP) to <= max_size, auto-contrast (percentile clip) or the
 * client's window, map to 8 bit, and encode with sharp (JPEG by default: see README for the
 * JPEG/WebP measurement) or leave raw. Saturated preview pixels are listed so the page can paint them.
 */
import sharp from 'sharp';
import { binMean, percentileWindow, previewBin, saturatedCells, saturatedIndices, toByte } from './kernels/preview.js';
import { previewSimd, previewSimdApplies } from './kernels/preview-simd.js';
import type { PreviewResult, PreviewTask } from './tasks.js';

const SATURATED_CAP = 1 << 16;
let img = new Uint16Array(0);
let maxImg = new Uint16Array(0);
let mark = new Uint8Array(0);

export async function runPreviewTask(t: PreviewTask): Promise<PreviewResult> {
  const t0 = performance.now();
  const n = t.width * t.height;
  const src = t.bytesPerPixel === 2 || t.isMip ? new Uint16Array(t.frames, t.frameOffset, n) : new Uint8Array(t.frames, t.frameOffset, n);
  const bin = t.isMip ? 1 : previewBin(t.width, t.height, t.maxSize);
  const ow = Math.ceil(t.width / bin);
  const oh = Math.ceil(t.height / bin);
  const on = ow * oh;
  const sat = t.saturation;
  let bytes: Uint8Array;
  let lo: number;
  let hi: number;
  let saturated: Uint32Array | null = null;
  if (t.simd && !t.isMip && src instanceof Uint16Array && previewSimdApplies(t.width, t.height, bin, t.bytesPerPixel)) {
    // The default 2048² -> 1024² preview: binning, window, mapping and saturation in one SIMD kernel.
    const r = previewSimd(src, t.width, t.height, t.window, t.clipPercent, sat ? null : t.saturationLevel, SATURATED_CAP);
    ({ lo, hi, saturated } = r);
    // sharp reads the kernel's memory in place (this worker runs one preview at a time); a raw
    // preview leaves the worker as its own array.
    bytes = t.format === 'jpeg' || t.format === 'webp' ? r.bytes : r.bytes.slice();
  } else {
    ({ bytes, lo, hi, saturated } = previewJs(src, t, bin, ow, oh, !sat));
  }
  if (sat) {
    if (mark.length < on) mark = new Uint8Array(on);
    const full =
      sat.bytesPerPixel === 2
        ? new Uint16Array(sat.frames, sat.frameOffset, sat.width * sat.height)
        : new Uint8Array(sat.frames, sat.frameOffset, sat.width * sat.height);
    saturated = saturatedCells(full, sat.width, sat.height, sat.factor * bin, ow, oh, t.saturationLevel, SATURATED_CAP, mark);
  }
  let data: Uint8Array = bytes;
  let format = 'raw';
  if (t.format === 'jpeg' || t.format === 'webp') {
    const pipe = sharp(bytes, { raw: { width: ow, height: oh, channels: 1 } }).toColourspace('b-w');
    const buf =
      t.format === 'jpeg'
        ? await pipe.jpeg({ quality: t.quality, mozjpeg: false }).toBuffer()
        : await pipe.webp({ quality: t.quality, effort: 0 }).toBuffer();
    data = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    format = t.format;
  }
  return {
    data,
    width: ow,
    height: oh,
    format,
    lo,
    hi,
    saturated: saturated ?? new Uint32Array(0),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The JS kernels: any bin, 8-bit frames, the MIP. */
function previewJs(
  src: Uint16Array | Uint8Array,
  t: PreviewTask,
  bin: number,
  ow: number,
  oh: number,
  listSaturated: boolean,
): { bytes: Uint8Array; lo: number; hi: number; saturated: Uint32Array | null } {
  const on = ow * oh;
  // Reused between previews (this pool runs one task at a time): 4 MiB less garbage per preview.
  if (img.length < on) {
    img = new Uint16Array(on);
    maxImg = new Uint16Array(on);
  }
  binMean(src, t.width, t.height, bin, img, maxImg);
  const [lo, hi] = t.window ?? percentileWindow(img, on, t.clipPercent);
  const bytes = new Uint8Array(on);
  toByte(img, on, lo, hi, bytes);
  return { bytes, lo, hi, saturated: listSaturated ? saturatedIndices(maxImg, on, t.saturationLevel, SATURATED_CAP) : null };
}
