/**
 * Per-frame cost of each QC kernel at 2048 x 2048 uint16 on one core, and its share of a 100 fps
 * frame budget (10 ms). Usage: node dist/bench/qc-bench.js [--quick]
 */
import { SimScene } from '../src/ingest/sim-scene.js';
import { frameStats, checksumPixels } from '../workers/kernels/stats.js';
import { binRegion, centredRegion } from '../workers/kernels/roi.js';
import { brenner, dcts, laplacianVariance, tenengrad } from '../workers/kernels/focus.js';
import { phaseCorrelate, spectrum } from '../workers/kernels/drift.js';
import { accumulateMip } from '../workers/kernels/preview.js';
import { cropMasked, median3x3 } from '../workers/kernels/despeckle.js';
import { runPreviewTask } from '../workers/preview-task.js';
import { combinePair, reducePlane } from '../workers/kernels/pyramid.js';
import { runFrameTask } from '../workers/frame-task.js';
import { DEFAULT_CONFIG } from '../src/config/config.js';
import type { QcParams } from '../workers/tasks.js';
import { histogramToTiles, type TileGeometry } from '../workers/kernels/tiles.js';
import { histogramToTilesSimd, simdUnavailableReason } from '../workers/kernels/tiles-simd.js';
import { machine, table, timeIt, timeItAsync } from './bench-util.js';

export async function qcTable(
  quick: boolean,
): Promise<{ rows: { kernel: string; ms: number; budget: string }[]; defaultMs: number; storedMs: number }> {
  const W = 2048;
  const H = 2048;
  const minMs = quick ? 150 : 600;
  const s = new SimScene({
    width: W,
    height: H,
    zPlanes: 1,
    channels: 1,
    blobs: 6400,
    seed: 4,
    bitDepth: 16,
    offset: 100,
    peak: 1500,
    readNoise: 1.6,
    gain: 0.46,
  });
  const sab = new SharedArrayBuffer(W * H * 2);
  const px = new Uint16Array(sab);
  s.expose(s.renderClean(0.5, 0, { dx: 0, dy: 0, blur: 0, gainFactor: 1 }), px, 10);
  const rows: { kernel: string; ms: number; budget: string }[] = [];
  const add = (kernel: string, sec: number) => rows.push({ kernel, ms: sec * 1000, budget: `${(((sec * 1000) / 10) * 100).toFixed(1)}%` });
  add(
    'histogram pass: saturation, under-exposure, percentiles, min/max/mean',
    timeIt(() => frameStats(px, 65535, 100, false), minMs),
  );
  add(
    '(optional, qc.checksum) FNV-1a frame checksum',
    timeIt(() => checksumPixels(px), minMs),
  );
  const fr = centredRegion(W, H, 512, []);
  const bin = 4;
  const bw = fr.w / bin;
  const img = new Float64Array(bw * bw);
  add(
    'focus ROI 512² centred, binned 4x4 -> 128²',
    timeIt(() => binRegion(px, W, fr, bin, img), minMs),
  );
  add(
    '  DCTS (2-D DCT-II via FFT, 128²)',
    timeIt(() => dcts(img, bw, bw, 3 / bin), minMs),
  );
  add(
    '  Tenengrad (128²)',
    timeIt(() => tenengrad(img, bw, bw), minMs),
  );
  add(
    '  variance of Laplacian (128²)',
    timeIt(() => laplacianVariance(img, bw, bw), minMs),
  );
  add(
    '  Brenner (128²)',
    timeIt(() => brenner(img, bw, bw), minMs),
  );
  const dr = centredRegion(W, H, 256, []);
  const dimg = new Float64Array(dr.w * dr.h);
  const spec = new Float64Array(2 * dr.w * dr.h);
  binRegion(px, W, dr, 1, dimg);
  const ref = spectrum(dimg, dr.w, dr.h, new Float64Array(2 * dr.w * dr.h)).slice();
  add(
    'drift: window 256² + spectrum (FFT)',
    timeIt(() => {
      binRegion(px, W, dr, 1, dimg);
      spectrum(dimg, dr.w, dr.h, spec);
    }, minMs),
  );
  add(
    'drift: saturation mask + 3x3 median outlier test (256²)',
    timeIt(() => {
      cropMasked(px, W, dr.x, dr.y, dr.w, dr.h, 65535, 100, dimg);
      median3x3(dimg, dr.w, dr.h, 5, 100, 0.46, 1.6);
    }, minMs),
  );
  add(
    'drift: correlate (plain + whitened) + upsampled DFT x20',
    timeIt(() => phaseCorrelate(spec, ref, dr.w, dr.h, 20, 8), minMs),
  );
  const mip = new Uint16Array(512 * 512);
  add(
    'stack MIP accumulate (every 4th pixel)',
    timeIt(() => accumulateMip(px, W, H, 4, mip), minMs),
  );
  const q = DEFAULT_CONFIG.qc;
  const params: QcParams = {
    checksum: false,
    focus: q.focus,
    dctsPsfPx: q.dcts_psf_px,
    roi: q.roi,
    focusBin: q.focus_bin,
    driftWindow: q.drift_window,
    driftBin: q.drift_bin,
    driftUpsample: q.drift_upsample,
    driftMinConfidence: q.drift_min_confidence,
    gain: 0.46,
    readNoise: 1.6,
  };
  // The default storage geometry: chunks 32x256x256, byte-shuffled for blosc, in a chunk-major z-block.
  const geometry: TileGeometry = {
    width: W,
    height: H,
    bytesPerPixel: 2,
    cz: 32,
    cy: 256,
    cx: 256,
    tilesX: W / 256,
    tilesY: H / 256,
    shuffled: true,
  };
  const block = new SharedArrayBuffer(32 * W * H * 2);
  const nonZero = new SharedArrayBuffer(geometry.tilesX * geometry.tilesY);
  let plane = 0;
  const extBuf = new SharedArrayBuffer(32 * (W / 2) * (H / 2) * 4);
  const task = (drift: boolean, store = false, levels = false, simd = false) =>
    runFrameTask({
      kind: 'frame',
      sampled: false,
      frames: sab,
      frameOffset: 0,
      width: W,
      height: H,
      bytesPerPixel: 2,
      saturationLevel: 65535,
      offset: 100,
      qc: params,
      drift,
      driftReference: drift ? new SharedArrayBuffer(ref.byteLength) : null,
      driftRefreshReference: false,
      mip: null,
      mipStep: 4,
      store: store ? { block, nonZero, z: plane++ % 32, geometry, ext: levels ? extBuf : null, downsample: 'mean', simd } : null,
    });
  const defaultSec = timeIt(() => task(false), minMs);
  add('DEFAULT per-frame QC (histogram pass + DCTS + Tenengrad)', defaultSec);
  add(
    '  ... of a stored frame (the histogram pass also writes it, shuffled, into its z-block), JS kernel',
    timeIt(() => task(false, true), minMs),
  );
  const storedSimdSec = timeIt(() => task(false, true, false, true), minMs);
  add('  ... of a stored frame, WebAssembly SIMD kernel (pipeline.kernels: simd, the default)', storedSimdSec);
  const nz = new Uint8Array(nonZero);
  const hist = new Uint32Array(65536);
  add(
    'fused histogram + shuffle into the z-block alone, JS kernel',
    timeIt(() => {
      hist.fill(0);
      histogramToTiles(px, hist, block, plane++ % 32, geometry, nz);
    }, minMs),
  );
  add(
    'fused histogram + shuffle into the z-block alone, WebAssembly SIMD (incl. its copies in and out)',
    timeIt(() => histogramToTilesSimd(px, block, plane++ % 32, geometry, nz), minMs),
  );
  add(
    '  + drift on this plane (center plane of each stack by default)',
    timeIt(() => task(true), minMs),
  );
  // The live pyramid (storage.levels): a stored frame's extra 2x2 pass, and the reduce job's step per
  // pair of planes of the level above (here 2048² sums -> one 1024² plane of level 1).
  const ext = new Uint32Array(1024 * 1024);
  const ext2 = new Uint32Array(1024 * 1024);
  const half = new Uint16Array(1024 * 1024);
  add(
    "  ... of a stored frame, storage.levels on (the same pass leaves the mean's 2x2 sums)",
    timeIt(() => task(false, true, true), minMs),
  );
  add(
    '  (a separate 2x2 sum pass, as for max/decimate, 2048² -> 1024² u32)',
    timeIt(() => reducePlane(px, W, H, 'mean', ext), minMs),
  );
  reducePlane(px, W, H, 'mean', ext2);
  add(
    'pyramid reduce job: z pair of 2x2 sums -> level 1 plane (mean, round half to even), per 2 frames',
    timeIt(() => combinePair(ext, ext2, true, W, H, 'mean', half), minMs),
  );
  // The default kernels (SIMD binning and mapping), and the JS kernels for comparison.
  for (const [format, simd] of [
    ['jpeg', true],
    ['webp', true],
    ['raw', true],
    ['jpeg', false],
    ['raw', false],
  ] as [string, boolean][]) {
    add(
      `preview 2048² -> 1024² ${format} (sharp)${simd ? '' : ', JS kernels (pipeline.kernels js)'}`,
      await timeItAsync(async () => {
        await runPreviewTask({
          kind: 'preview',
          frames: sab,
          frameOffset: 0,
          width: W,
          height: H,
          bytesPerPixel: 2,
          isMip: false,
          saturationLevel: 65535,
          maxSize: 1024,
          format,
          quality: 80,
          clipPercent: 0.1,
          window: null,
          simd,
        });
      }, minMs),
    );
  }
  if (simdUnavailableReason())
    throw new Error(`qc-bench: the SIMD kernel is not available (${simdUnavailableReason()}); run npm run build`);
  return { rows, defaultMs: defaultSec * 1000, storedMs: storedSimdSec * 1000 };
}

async function main(): Promise<void> {
  const { rows, defaultMs, storedMs } = await qcTable(process.argv.includes('--quick'));
  process.stdout.write(
    `spimstream QC bench — 2048x2048 uint16, one core, budget = 10 ms (100 fps); ${JSON.stringify(machine())}\n\n${table(rows)}\n`,
  );
  process.stdout.write(
    `\n${JSON.stringify({ bench: 'qc', machine: machine(), default_qc_ms_per_frame: defaultMs, stored_frame_task_ms: storedMs, target_ms: 5, rows })}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
