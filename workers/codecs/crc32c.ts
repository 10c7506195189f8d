import { createRequire } from 'node:module';
/** CRC-32C (Castagnoli), slicing-by-8, as the Zarr v3 `crc32c` codec and the shard index use. */
const T = new Uint32Array(8 * 256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[i] = c >>> 0;
}
for (let i = 0; i < 256; i++) {
  for (let s = 1; s < 8; s++) T[s * 256 + i] = (T[(s - 1) * 256 + i] >>> 8) ^ T[T[(s - 1) * 256 + i] & 0xff];
}

const nativeCrc = (() => {
  try {
    // Optional npm dependency with a prebuilt SSE4.2 / ARMv8 kernel (~5 GB/s here vs ~0.8 GB/s in JS).
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c(b: Uint8Array, seed?: number): number }).crc32c;
  } catch {
    return null;
  }
})();

export const crc32cImplementation = nativeCrc ? '@node-rs/crc32 (native)' : 'JavaScript (slicing-by-8)';

export function crc32c(data: Uint8Array, seed = 0): number {
  if (nativeCrc && data.length >= 64) return nativeCrc(data, seed) >>> 0;
  return crc32cJs(data, seed);
}

/** The portable implementation (also the reference the tests compare the native one with). */
export function crc32cJs(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n % 8);
  for (; i < end8; i += 8) {
    const a = (c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>> 0;
    c =
      T[7 * 256 + (a & 0xff)] ^
      T[6 * 256 + ((a >>> 8) & 0xff)] ^
      T[5 * 256 + ((a >>> 16) & 0xff)] ^
      T[4 * 256 + (a >>> 24)] ^
      T[3 * 256 + data[i + 4]] ^
      T[2 * 256 + data[i + 5]] ^
      T[256 + data[i + 6]] ^
      T[data[i + 7]];
  }
  for (; i < n; i++) c = (c >>> 8) ^ T[(c ^ data[i]) & 0xff];
  return ~c >>> 0;
}

/** Appends the little-endian CRC-32C of `data` (the Zarr v3 crc32c codec's encoding). */
export function appendCrc32c(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 4);
  out.set(data);
  new DataView(out.buffer).setUint32(data.length, crc32c(data), true);
  return out;
}
