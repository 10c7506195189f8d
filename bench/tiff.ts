/** A minimal reader for uncompressed, little- or big-endian, multi-page grayscale TIFF stacks (uint8/uint16). */
import fs from 'node:fs';

export interface TiffStack {
  width: number;
  height: number;
  bitsPerSample: number;
  pages: (Uint16Array | Uint8Array)[];
}

export function readTiffStack(file: string): TiffStack {
  const buf = fs.readFileSync(file);
  const le = buf.toString('ascii', 0, 2) === 'II';
  if (!le && buf.toString('ascii', 0, 2) !== 'MM') throw new Error(`${file}: not a TIFF file`);
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  if (u16(2) !== 42) throw new Error(`${file}: BigTIFF or unknown TIFF version`);
  let ifd = u32(4);
  const pages: (Uint16Array | Uint8Array)[] = [];
  let width = 0;
  let height = 0;
  let bits = 0;
  while (ifd !== 0) {
    const n = u16(ifd);
    const tags = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const e = ifd + 2 + i * 12;
      const tag = u16(e);
      if (![256, 257, 258, 259, 273, 279].includes(tag)) continue; // only what a grayscale stack needs
      const type = u16(e + 2);
      const count = u32(e + 4);
      const size = type === 3 ? 2 : 4;
      const at = count * size <= 4 ? e + 8 : u32(e + 8);
      const vals: number[] = [];
      for (let k = 0; k < count; k++) vals.push(type === 3 ? u16(at + k * 2) : u32(at + k * 4));
      tags.set(tag, vals);
    }
    width = tags.get(256)![0];
    height = tags.get(257)![0];
    bits = tags.get(258)?.[0] ?? 8;
    if ((tags.get(259)?.[0] ?? 1) !== 1) throw new Error(`${file}: compressed TIFF pages are not supported`);
    const offsets = tags.get(273)!;
    const counts = tags.get(279)!;
    const raw = Buffer.concat(offsets.map((o, i) => buf.subarray(o, o + counts[i])));
    if (bits === 16) {
      const px = new Uint16Array(width * height);
      for (let i = 0; i < px.length; i++) px[i] = le ? raw.readUInt16LE(i * 2) : raw.readUInt16BE(i * 2);
      pages.push(px);
    } else pages.push(new Uint8Array(raw.subarray(0, width * height)));
    ifd = u32(ifd + 2 + n * 12);
  }
  return { width, height, bitsPerSample: bits, pages };
}
