/** Messages between the main thread and the worker pool. Pixels travel in SharedArrayBuffers. */
import type { ResolvedCodec } from './codecs/chunk-codec.js';
import type { FrameQc } from '../src/qc/qc-types.js';
import type { TileGeometry } from './kernels/tiles.js';
import type { DownsampleMethod } from './kernels/pyramid.js';

export interface FrameTask {
  kind: 'frame';
  frames: SharedArrayBuffer;
  frameOffset: number;
  width: number;
  height: number;
  bytesPerPixel: number;
  saturationLevel: number;
  offset: number;
  qc: QcParams;
  /**
   * Storage first: the workers are behind, so only the cheap part runs (histogram, intensity and
   * saturation, the z-block write); focus and drift are skipped and the result says so.
   */
  sampled: boolean;
  /** Compute drift on this frame (the main thread picks which planes). */
  drift: boolean;
  /** Drift reference spectrum for this stream and plane, or null: the result then carries one. */
  driftReference: SharedArrayBuffer | null;
  /** Return this frame's spectrum as the new reference ("previous timepoint" mode). */
  driftRefreshReference: boolean;
  /** Stack MIP accumulator of this stream (uint16, every mipStep-th pixel), or null. */
  mip: SharedArrayBuffer | null;
  mipStep: number;
  /** The stream's live volume (uint16 planes of ceil(w/step) x ceil(h/step)): this frame's plane goes at `volumeOffset` (elements), or null. */
  volume?: { buffer: SharedArrayBuffer; step: number; offset: number } | null;
  /** Where the frame is stored: plane z of a chunk-major z-block (see kernels/tiles.ts), or null. */
  store: TileTarget | null;
}

export interface TileTarget {
  block: SharedArrayBuffer;
  /** One byte per tile, set to 1 by the frame tasks that wrote a non-zero sample into it. */
  nonZero: SharedArrayBuffer;
  z: number;
  geometry: TileGeometry;
  /** The pyramid is on: the plane's first reduction step goes to plane z of the block's `ext` (uint32). */
  ext?: SharedArrayBuffer | null;
  downsample?: DownsampleMethod;
  /** Use the WebAssembly SIMD pass where it applies (`pipeline.kernels`: simd; js = the plain kernel). */
  simd?: boolean;
  /** This frame is previewed with the pyramid on: its level-1 plane (uint16, halfOf(w) x halfOf(h)) goes here. */
  levelOut?: SharedArrayBuffer | null;
}

/**
 * One pyramid step for a sealed z-block: its planes' reductions (`src`, uint32, planeElems each)
 * become planes z0.. of the next level's block, and (when a level follows) their own reductions go
 * to that block's `ext`.
 */
export interface ReduceTask {
  kind: 'reduce';
  src: SharedArrayBuffer;
  /** The source level's plane size. */
  width: number;
  height: number;
  /** Planes of the source block (the last block of a stack may hold fewer than cz). */
  planes: number;
  present: number[];
  /** Pair planes (the source level has more than one plane); otherwise one plane in, one out. */
  halveZ: boolean;
  method: DownsampleMethod;
  dst: { block: SharedArrayBuffer; nonZero: SharedArrayBuffer; geometry: TileGeometry; z0: number; ext: SharedArrayBuffer | null };
}

export interface QcParams {
  checksum: boolean;
  focus: string[];
  dctsPsfPx: number;
  roi: number[];
  focusBin: number;
  driftWindow: number;
  driftBin: number;
  driftUpsample: number;
  driftMinConfidence: number;
  gain: number;
  readNoise: number;
}

export interface FrameResult {
  qc: FrameQc;
  /** Set when the task had no drift reference: the prepared window, to become the reference. */
  newReference: SharedArrayBuffer | null;
  seconds: number;
}

export interface EncodeTask {
  kind: 'encode';
  /** A chunk-major z-block (kernels/tiles.ts); tile `tile` is encoded in place. */
  block: SharedArrayBuffer;
  nonZero: SharedArrayBuffer;
  tile: number;
  geometry: TileGeometry;
  /** present[z] = 1 for planes that arrived; the others are set to fill value 0 before encoding. */
  present: number[];
  codec: ResolvedCodec;
  /** Where to put the encoded chunk (a slot of the output slab), or null: return it as a new array. */
  out: { buffer: SharedArrayBuffer; offset: number; bytes: number } | null;
}

export interface PreviewTask {
  kind: 'preview';
  /** The frame pool (a plane) or a stream's MIP buffer (uint16, already at MIP resolution). */
  frames: SharedArrayBuffer;
  frameOffset: number;
  width: number;
  height: number;
  bytesPerPixel: number;
  isMip: boolean;
  saturationLevel: number;
  maxSize: number;
  format: string;
  quality: number;
  clipPercent: number;
  /** Fixed contrast window, or null for percentile auto-contrast. */
  window: [number, number] | null;
  /** Use the WebAssembly SIMD preview where it applies (`pipeline.kernels`: simd; js = the plain kernels). */
  simd?: boolean;
  /**
   * `frames` is a pyramid level `factor` times smaller than the camera frame here: saturated pixels
   * are marked from this full-resolution frame (a mean would hide a lone saturated pixel).
   */
  saturation?: {
    frames: SharedArrayBuffer;
    frameOffset: number;
    width: number;
    height: number;
    bytesPerPixel: number;
    factor: number;
  } | null;
}

export interface PreviewResult {
  data: Uint8Array;
  width: number;
  height: number;
  format: string;
  lo: number;
  hi: number;
  /** Preview pixel indices whose source block reached the saturation level (capped at 65536). */
  saturated: Uint32Array;
  seconds: number;
}

export type Task = FrameTask | EncodeTask | PreviewTask | ReduceTask;

/**
 * Posted by a worker once its modules are loaded (the value is its threadId): the pool does not
 * terminate a thread before that (worker-pool.ts, close).
 */
export const WORKER_LOADED = 'spimstreamWorkerLoaded';
