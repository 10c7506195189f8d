/**
 * The binary volume message (WebSocket, little-endian): a stack's live volume for the 3-D and
 * orthogonal views. A 56-byte header, then width × height × depth uint16 voxels, x fastest, then y,
 * then z.
 *
 *  0  4 bytes  magic "SPVL"
 *  4  u32 width     8 u32 height    12 u32 depth
 * 16  u32 t        20 u32 view      24 u32 step (frame pixels per voxel in x and y)   28 u32 reserved (0)
 * 32  f32 voxel size x (µm)   36 f32 y   40 f32 z (the z step)   44 u32 reserved (0)
 * 48  f64 the newest plane's timestamp, ms since the Unix epoch (from the ring)
 */
export const VOLUME_HEADER_BYTES = 56;

export interface VolumeMessage {
  width: number;
  height: number;
  depth: number;
  t: number;
  view: number;
  step: number;
  voxelUm: [number, number, number];
  timestampMs: number;
  data: Uint16Array;
}

export function encodeVolume(m: VolumeMessage): Buffer {
  const buf = Buffer.alloc(VOLUME_HEADER_BYTES + m.data.byteLength);
  buf.write('SPVL', 0, 'ascii');
  buf.writeUInt32LE(m.width, 4);
  buf.writeUInt32LE(m.height, 8);
  buf.writeUInt32LE(m.depth, 12);
  buf.writeUInt32LE(m.t, 16);
  buf.writeUInt32LE(m.view, 20);
  buf.writeUInt32LE(m.step, 24);
  buf.writeFloatLE(m.voxelUm[0], 32);
  buf.writeFloatLE(m.voxelUm[1], 36);
  buf.writeFloatLE(m.voxelUm[2], 40);
  buf.writeDoubleLE(m.timestampMs, 48);
  Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).copy(buf, VOLUME_HEADER_BYTES);
  return buf;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function decodeVolume(b: Uint8Array): VolumeMessage {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const magic = String.fromCharCode(b[0], b[1], b[2], b[3]);
  if (magic !== 'SPVL') throw new Error(`not a volume message (magic ${JSON.stringify(magic)})`);
  const width = dv.getUint32(4, true);
  const height = dv.getUint32(8, true);
  const depth = dv.getUint32(12, true);
  const n = width * height * depth;
  if (b.byteLength !== VOLUME_HEADER_BYTES + 2 * n)
    throw new Error(`volume message of ${b.byteLength} bytes, ${width}x${height}x${depth} needs ${VOLUME_HEADER_BYTES + 2 * n}`);
  // One copy of the voxels' bytes (aligned for a Uint16Array); byte by byte only on a big-endian host.
  const data = LITTLE_ENDIAN ? new Uint16Array(b.slice(VOLUME_HEADER_BYTES).buffer) : new Uint16Array(n);
  if (!LITTLE_ENDIAN) for (let i = 0; i < n; i++) data[i] = dv.getUint16(VOLUME_HEADER_BYTES + 2 * i, true);
  return {
    width,
    height,
    depth,
    t: dv.getUint32(16, true),
    view: dv.getUint32(20, true),
    step: dv.getUint32(24, true),
    voxelUm: [dv.getFloat32(32, true), dv.getFloat32(36, true), dv.getFloat32(40, true)],
    timestampMs: dv.getFloat64(48, true),
    data,
  };
}
