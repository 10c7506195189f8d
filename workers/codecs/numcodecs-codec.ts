/**
 * The reference path: zarrita's own WASM c-blosc (numcodecs), kept selectable to compare against.
 * It hard-wires typesize 4 and ignores the shuffle setting, so these chunks are unshuffled and the
 * metadata says so; its WASM module loads on first use, so encoding is async.
 */
import type { CodecDescriptor } from './codec.js';

type NumcodecsBlosc = { encode(b: Uint8Array): Promise<Uint8Array> };
const byName = new Map<string, NumcodecsBlosc>();

export function numcodecsCodec(cname: 'zstd' | 'lz4'): CodecDescriptor {
  return {
    id: `numcodecs-blosc-${cname}`,
    needs: null,
    async: true,
    split: false,
    implementation: () => 'numcodecs WASM c-blosc (no shuffle)',
    level: (clevel) => clevel,
    metadata: (c) => [{ name: 'blosc', configuration: { cname, clevel: c.clevel, shuffle: 'noshuffle', typesize: 4, blocksize: 0 } }],
    preShuffled: () => false,
    async encodeAsync(raw, c) {
      let codec = byName.get(cname);
      if (!codec) {
        const { Blosc } = (await import('numcodecs')) as unknown as { Blosc: { fromConfig(cfg: Record<string, unknown>): NumcodecsBlosc } };
        codec = Blosc.fromConfig({ cname, clevel: c.clevel, shuffle: 0, blocksize: 0 });
        byName.set(cname, codec);
      }
      return new Uint8Array(await codec.encode(raw));
    },
  };
}
