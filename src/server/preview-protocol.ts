/**
 * The binary preview message (WebSocket, little-endian). A 56-byte header, the image bytes, then
 * `saturatedCount` uint32 indices of saturated preview pixels (row-major, preview coordinates).
 *
 *  0  4 bytes  magic "SPV1"
 *  4  u8       kind: 0 plane, 1 stack MIP
 *  5  u8       format: 0 raw 8-bit (width*height bytes), 1 JPEG, 2 WebP
 *  6  u8       pyramid level the image was made from (0: the frame, binned; 1: its level-1 plane)
 *  7  u8       reserved (0)
 *  8  u32      width      12 u32 height
 * 16  u32 t    20 u32 c    24 u32 z    28 u32 view
 * 32  f32      lo (ADU mapped to 0)    36 f32 hi (ADU mapped to 255)
 * 40  u32      saturatedCount          44 u32 imageBytes
 * 48  f64      frame timestamp, ms since the Unix epoch (from the ring; 0 for a MIP)
 */
export const PREVIEW_HEADER_BYTES = 56;
export const FORMAT_CODES: Record<string, number> = { raw: 0, jpeg: 1, webp: 2 };

export interface PreviewMessage {
  kind: 'plane' | 'mip';
  level: number;
  format: string;
  width: number;
  height: number;
  t: number;
  c: number;
  z: number;
  view: number;
  lo: number;
  hi: number;
  timestampMs: number;
  data: Uint8Array;
  saturated: Uint32Array;
}

export function encodePreview(m: PreviewMessage): Buffer {
  const buf = Buffer.alloc(PREVIEW_HEADER_BYTES + m.data.length + 4 * m.saturated.length);
  buf.write('SPV1', 0, 'ascii');
  buf.writeUInt8(m.kind === 'mip' ? 1 : 0, 4);
  buf.writeUInt8(FORMAT_CODES[m.format] ?? 0, 5);
  buf.writeUInt8(m.level, 6);
  buf.writeUInt32LE(m.width, 8);
  buf.writeUInt32LE(m.height, 12);
  buf.writeUInt32LE(m.t, 16);
  buf.writeUInt32LE(m.c, 20);
  buf.writeUInt32LE(m.z, 24);
  buf.writeUInt32LE(m.view, 28);
  buf.writeFloatLE(m.lo, 32);
  buf.writeFloatLE(m.hi, 36);
  buf.writeUInt32LE(m.saturated.length, 40);
  buf.writeUInt32LE(m.data.length, 44);
  buf.writeDoubleLE(m.timestampMs, 48);
  buf.set(m.data, PREVIEW_HEADER_BYTES);
  Buffer.from(m.saturated.buffer, m.saturated.byteOffset, m.saturated.byteLength).copy(buf, PREVIEW_HEADER_BYTES + m.data.length);
  return buf;
}

export function decodePreview(b: Uint8Array): PreviewMessage {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const magic = String.fromCharCode(b[0], b[1], b[2], b[3]);
  if (magic !== 'SPV1') throw new Error(`not a preview message (magic ${JSON.stringify(magic)})`);
  const formats = ['raw', 'jpeg', 'webp'];
  const satCount = dv.getUint32(40, true);
  const imageBytes = dv.getUint32(44, true);
  const sat = new Uint32Array(satCount);
  for (let i = 0; i < satCount; i++) sat[i] = dv.getUint32(PREVIEW_HEADER_BYTES + imageBytes + 4 * i, true);
  return {
    kind: b[4] === 1 ? 'mip' : 'plane',
    level: b[6],
    format: formats[b[5]] ?? 'raw',
    width: dv.getUint32(8, true),
    height: dv.getUint32(12, true),
    t: dv.getUint32(16, true),
    c: dv.getUint32(20, true),
    z: dv.getUint32(24, true),
    view: dv.getUint32(28, true),
    lo: dv.getFloat32(32, true),
    hi: dv.getFloat32(36, true),
    timestampMs: dv.getFloat64(48, true),
    data: b.subarray(PREVIEW_HEADER_BYTES, PREVIEW_HEADER_BYTES + imageBytes),
    saturated: sat,
  };
}
