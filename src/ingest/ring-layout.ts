/**
 * The shared-memory ring: byte layout shared with acquisition software.
 * Any language can produce into it with plain memory-mapped I/O; see docs/ring-protocol.md.
 * All integers are little-endian. Offsets here are the single source of truth for the TS reader,
 * the TS writer (simulator) and the Python example writer (sdk/python/spimring and sdk/c/spimring.h mirror them).
 */

export const RING_MAGIC = 'SPIMRING';
export const RING_VERSION = 1;
export const HEADER_BYTES = 4096;
export const SLOT_HEADER_BYTES = 64;
export const SLOT_ALIGN = 4096;

/** Header field offsets (bytes from the start of the file). */
export const H = {
  magic: 0, // 8 ASCII bytes "SPIMRING"
  version: 8, // u32
  headerBytes: 12, // u32, 4096
  slotCount: 16, // u32
  slotHeaderBytes: 20, // u32, 64
  slotStride: 24, // u64, bytes from one slot to the next (multiple of 4096)
  width: 32, // u32, pixels
  height: 36, // u32, pixels
  dtype: 40, // u32, 1 = uint8, 2 = uint16
  bitDepth: 44, // u32, significant bits (8..16)
  writeCount: 48, // u64, frames published so far (written last, after a slot's end seq)
  acquisitionId: 56, // u64, producer bumps it when a new acquisition starts
  state: 64, // u32, 0 idle, 1 acquiring, 2 finished
  producerPid: 68, // u32, informational
  zPlanes: 72, // u32, planes per stack (0 = unknown -> 1)
  channels: 76, // u32 (0 = unknown -> 1)
  views: 80, // u32 (0 = unknown -> 1)
  acquisitionFirstFrame: 88, // u64, write_count when the current acquisition started
  reserved: 96,
} as const;

/** Slot header field offsets (bytes from the start of a slot). Pixels follow at SLOT_HEADER_BYTES. */
export const S = {
  seqBegin: 0, // u64, = frame number + 1, written BEFORE the pixels
  seqEnd: 8, // u64, = frame number + 1, written AFTER the pixels
  cameraCounter: 16, // u64, the source's own frame counter
  timestampNs: 24, // u64, acquisition time in ns (any epoch, monotonic per ring)
  t: 32, // u32 timepoint
  c: 36, // u32 channel
  z: 40, // u32 plane within the stack
  view: 44, // u32 view / camera index
  flags: 48, // u32, FLAG_*
  payloadBytes: 52, // u32, bytes of pixels in this slot (must equal width*height*bytesPerPixel)
  width: 56, // u32, must equal header width
  height: 60, // u32, must equal header height
} as const;

export const FLAG_STACK_START = 1;
export const FLAG_STACK_END = 2;

export const STATE_IDLE = 0;
export const STATE_ACQUIRING = 1;
export const STATE_FINISHED = 2;

export type Dtype = 'uint8' | 'uint16';

export interface RingGeometry {
  width: number;
  height: number;
  dtype: Dtype;
  bitDepth: number;
  slotCount: number;
  zPlanes: number;
  channels: number;
  views: number;
}

export interface RingHeader extends RingGeometry {
  version: number;
  slotStride: number;
  frameBytes: number;
  fileBytes: number;
}

export const MAX_DIM = 65536;

export function bytesPerPixel(dtype: Dtype): number {
  return dtype === 'uint8' ? 1 : 2;
}

export function dtypeCode(dtype: Dtype): number {
  return bytesPerPixel(dtype);
}

export function slotStrideFor(frameBytes: number): number {
  return Math.ceil((SLOT_HEADER_BYTES + frameBytes) / SLOT_ALIGN) * SLOT_ALIGN;
}

export function ringFileBytes(g: Pick<RingGeometry, 'width' | 'height' | 'dtype' | 'slotCount'>): number {
  return HEADER_BYTES + g.slotCount * slotStrideFor(g.width * g.height * bytesPerPixel(g.dtype));
}

/** Raised for any ring that is not a valid spimstream ring. The message names the field. */
export class RingFormatError extends Error {
  constructor(
    readonly path: string,
    readonly field: string,
    detail: string,
  ) {
    super(`bad ring ${path}: ${field}: ${detail}`);
    this.name = 'RingFormatError';
  }
}

/** Validates the first HEADER_BYTES of a ring file. `fileBytes` is the file's actual size. */
export function parseRingHeader(buf: Uint8Array, fileBytes: number, path: string): RingHeader {
  const fail = (field: string, detail: string): never => {
    throw new RingFormatError(path, field, detail);
  };
  if (fileBytes < HEADER_BYTES || buf.byteLength < HEADER_BYTES) {
    fail('file size', `${fileBytes} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  const magic = String.fromCharCode(...buf.subarray(0, 8));
  if (magic !== RING_MAGIC) fail('magic', `expected "${RING_MAGIC}", found ${JSON.stringify(magic)}`);
  const version = dv.getUint32(H.version, true);
  if (version !== RING_VERSION) fail('version', `${version} is not supported (this spimstream reads version ${RING_VERSION})`);
  const headerBytes = dv.getUint32(H.headerBytes, true);
  if (headerBytes !== HEADER_BYTES) fail('header_bytes', `${headerBytes}, expected ${HEADER_BYTES}`);
  const slotHeaderBytes = dv.getUint32(H.slotHeaderBytes, true);
  if (slotHeaderBytes !== SLOT_HEADER_BYTES) fail('slot_header_bytes', `${slotHeaderBytes}, expected ${SLOT_HEADER_BYTES}`);
  const slotCount = dv.getUint32(H.slotCount, true);
  if (slotCount < 2 || slotCount > 1 << 20) fail('slot_count', `${slotCount} is outside 2..${1 << 20}`);
  const width = dv.getUint32(H.width, true);
  const height = dv.getUint32(H.height, true);
  if (width < 1 || width > MAX_DIM) fail('width', `${width} is outside 1..${MAX_DIM}`);
  if (height < 1 || height > MAX_DIM) fail('height', `${height} is outside 1..${MAX_DIM}`);
  const code = dv.getUint32(H.dtype, true);
  if (code !== 1 && code !== 2) fail('dtype', `code ${code} is not 1 (uint8) or 2 (uint16)`);
  const dtype: Dtype = code === 1 ? 'uint8' : 'uint16';
  const bitDepth = dv.getUint32(H.bitDepth, true);
  const maxBits = 8 * bytesPerPixel(dtype);
  if (bitDepth < 1 || bitDepth > maxBits) fail('bit_depth', `${bitDepth} is outside 1..${maxBits} for ${dtype}`);
  const frameBytes = width * height * bytesPerPixel(dtype);
  // The slot's payload_bytes is a u32: a frame of 4 GiB or more cannot be described (and would be torn).
  if (frameBytes > 0xffffffff)
    fail(
      'width x height',
      `${width}x${height} ${dtype} is ${frameBytes} bytes per frame; payload_bytes (u32) allows at most ${0xffffffff}`,
    );
  const slotStride = Number(dv.getBigUint64(H.slotStride, true));
  if (slotStride < SLOT_HEADER_BYTES + frameBytes) {
    fail(
      'slot_stride',
      `${slotStride} bytes cannot hold a ${SLOT_HEADER_BYTES}-byte slot header plus a ${width}x${height} ${dtype} frame (${frameBytes} bytes)`,
    );
  }
  if (slotStride % 8 !== 0) fail('slot_stride', `${slotStride} is not a multiple of 8`);
  const need = HEADER_BYTES + slotCount * slotStride;
  if (fileBytes < need) fail('file size', `${fileBytes} bytes, but ${slotCount} slots of ${slotStride} bytes need ${need}`);
  const orOne = (v: number) => (v === 0 ? 1 : v);
  const zPlanes = orOne(dv.getUint32(H.zPlanes, true));
  const channels = orOne(dv.getUint32(H.channels, true));
  const views = orOne(dv.getUint32(H.views, true));
  if (zPlanes > 100000) fail('z_planes', `${zPlanes} is more than 100000`);
  if (channels > 64) fail('channels', `${channels} is more than 64`);
  if (views > 64) fail('views', `${views} is more than 64`);
  return { version, slotCount, slotStride, width, height, dtype, bitDepth, frameBytes, fileBytes, zPlanes, channels, views };
}

/** Fills a header buffer (HEADER_BYTES long) for a new ring. Used by writers. */
export function encodeRingHeader(g: RingGeometry, pid: number): Uint8Array {
  const buf = new Uint8Array(HEADER_BYTES);
  const dv = new DataView(buf.buffer);
  for (let i = 0; i < 8; i++) buf[i] = RING_MAGIC.charCodeAt(i);
  dv.setUint32(H.version, RING_VERSION, true);
  dv.setUint32(H.headerBytes, HEADER_BYTES, true);
  dv.setUint32(H.slotCount, g.slotCount, true);
  dv.setUint32(H.slotHeaderBytes, SLOT_HEADER_BYTES, true);
  dv.setBigUint64(H.slotStride, BigInt(slotStrideFor(g.width * g.height * bytesPerPixel(g.dtype))), true);
  dv.setUint32(H.width, g.width, true);
  dv.setUint32(H.height, g.height, true);
  dv.setUint32(H.dtype, dtypeCode(g.dtype), true);
  dv.setUint32(H.bitDepth, g.bitDepth, true);
  dv.setUint32(H.state, STATE_IDLE, true);
  dv.setUint32(H.producerPid, pid, true);
  dv.setUint32(H.zPlanes, g.zPlanes, true);
  dv.setUint32(H.channels, g.channels, true);
  dv.setUint32(H.views, g.views, true);
  return buf;
}

/** Per-frame metadata as read from a slot header. */
export interface FrameMeta {
  /** Ring frame number (0-based, producer order). */
  seq: number;
  cameraCounter: number;
  timestampNs: number;
  t: number;
  c: number;
  z: number;
  view: number;
  flags: number;
}
