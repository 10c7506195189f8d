/** Messages between the main thread and the worker pool. Pixels travel in SharedArrayBuffers. */
import type { ResolvedCodec } from './codecs/chunk-codec.js';
import type { FrameQc } from '../src/qc/qc-types.js';

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
  /** Compute drift on this frame (the main thread picks which planes). */
  drift: boolean;
  /** Drift reference spectrum for this stream and plane, or null: the result then carries one. */
  driftReference: SharedArrayBuffer | null;
  /** Return this frame's spectrum as the new reference ("previous timepoint" mode). */
  driftRefreshReference: boolean;
  /** Stack MIP accumulator of this stream (uint16, every mipStep-th pixel), or null. */
  mip: SharedArrayBuffer | null;
  mipStep: number;
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
  block: SharedArrayBuffer;
  /** Block layout: planes x height x width, bytes per pixel. */
  planes: number;
  height: number;
  width: number;
  bytesPerPixel: number;
  /** Inner chunk: z0..z0+cz, y0..y0+cy, x0..x0+cx (chunk shape; edge chunks are padded with fill 0). */
  y0: number;
  x0: number;
  cz: number;
  cy: number;
  cx: number;
  /** present[z] = 1 for planes that arrived; the others are fill value 0. */
  present: number[];
  codec: ResolvedCodec;
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

export type Task = FrameTask | EncodeTask | PreviewTask;
