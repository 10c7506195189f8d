/**
 * Producer side of the ring, as the simulator (and tests) use it. Never waits for a consumer:
 * every publish overwrites the oldest slot. Uses positional writes on the /dev/shm file; each
 * write is a syscall, which orders the seqlock fields around the pixels as the protocol requires.
 */
import fs from 'node:fs';
import {
  H,
  S,
  HEADER_BYTES,
  SLOT_HEADER_BYTES,
  STATE_ACQUIRING,
  STATE_FINISHED,
  bytesPerPixel,
  encodeRingHeader,
  ringFileBytes,
  slotStrideFor,
  type FrameMeta,
  type RingGeometry,
} from './ring-layout.js';

export class RingWriter {
  readonly frameBytes: number;
  readonly slotStride: number;
  private written = 0;
  private readonly fd: number;
  private readonly slotHead = new Uint8Array(SLOT_HEADER_BYTES);
  private readonly slotView = new DataView(this.slotHead.buffer);
  private readonly u64 = new Uint8Array(8);
  private readonly u64View = new DataView(this.u64.buffer);
  private acquisitionId = 0;

  private constructor(
    readonly path: string,
    readonly geometry: RingGeometry,
  ) {
    this.frameBytes = geometry.width * geometry.height * bytesPerPixel(geometry.dtype);
    this.slotStride = slotStrideFor(this.frameBytes);
    // Build the file under a temporary name and rename it, so a reader never sees a half header.
    const tmp = `${path}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w+');
    fs.ftruncateSync(fd, ringFileBytes(geometry));
    fs.writeSync(fd, encodeRingHeader(geometry, process.pid), 0, HEADER_BYTES, 0);
    fs.closeSync(fd);
    fs.renameSync(tmp, path);
    this.fd = fs.openSync(path, 'r+');
  }

  static create(path: string, geometry: RingGeometry): RingWriter {
    return new RingWriter(path, geometry);
  }

  get framesWritten(): number {
    return this.written;
  }

  private writeU64(pos: number, v: number): void {
    this.u64View.setBigUint64(0, BigInt(v), true);
    fs.writeSync(this.fd, this.u64, 0, 8, pos);
  }

  private writeU32(pos: number, v: number): void {
    this.u64View.setUint32(0, v, true);
    fs.writeSync(this.fd, this.u64, 0, 4, pos);
  }

  startAcquisition(): void {
    this.acquisitionId++;
    this.writeU64(H.acquisitionFirstFrame, this.written);
    this.writeU64(H.acquisitionId, this.acquisitionId);
    this.writeU32(H.state, STATE_ACQUIRING);
  }

  finishAcquisition(): void {
    this.writeU32(H.state, STATE_FINISHED);
  }

  /** Publishes one frame. `meta.seq` is ignored: the writer numbers frames itself. */
  publish(pixels: Uint8Array, meta: Omit<FrameMeta, 'seq'>): number {
    if (pixels.byteLength !== this.frameBytes) {
      throw new Error(`frame is ${pixels.byteLength} bytes, ring expects ${this.frameBytes}`);
    }
    const n = this.written;
    const slotPos = HEADER_BYTES + (n % this.geometry.slotCount) * this.slotStride;
    const v = this.slotView;
    // 1. seq_begin = n+1 marks the slot as being (re)written.
    this.writeU64(slotPos + S.seqBegin, n + 1);
    // 2. metadata (seq_end still holds the previous occupant's number) and pixels.
    v.setBigUint64(S.cameraCounter, BigInt(meta.cameraCounter), true);
    v.setBigUint64(S.timestampNs, BigInt(meta.timestampNs), true);
    v.setUint32(S.t, meta.t, true);
    v.setUint32(S.c, meta.c, true);
    v.setUint32(S.z, meta.z, true);
    v.setUint32(S.view, meta.view, true);
    v.setUint32(S.flags, meta.flags, true);
    v.setUint32(S.payloadBytes, this.frameBytes, true);
    v.setUint32(S.width, this.geometry.width, true);
    v.setUint32(S.height, this.geometry.height, true);
    fs.writeSync(this.fd, this.slotHead, 16, SLOT_HEADER_BYTES - 16, slotPos + 16);
    fs.writeSync(this.fd, pixels, 0, this.frameBytes, slotPos + SLOT_HEADER_BYTES);
    // 3. seq_end = n+1 completes the slot, 4. write_count publishes it.
    this.writeU64(slotPos + S.seqEnd, n + 1);
    this.written = n + 1;
    this.writeU64(H.writeCount, this.written);
    return n;
  }

  /** Test hook: begin overwriting slot of frame n without finishing (simulates a torn write). */
  beginWithoutFinishing(n: number): void {
    const slotPos = HEADER_BYTES + (n % this.geometry.slotCount) * this.slotStride;
    this.writeU64(slotPos + S.seqBegin, n + 1);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
