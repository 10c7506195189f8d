/**
 * Blosc byte shuffle: element bytes regrouped by significance (all low bytes, then all high bytes).
 * Trailing bytes that do not fill an element are copied unchanged, as c-blosc does.
 */
export function shuffle(src: Uint8Array, dst: Uint8Array, typesize: number, n: number): void {
  const elems = Math.floor(n / typesize);
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
