/**
 * The codec registry is the one list: the configuration's allowed values, the descriptors the
 * workers and the store read, and every descriptor's chunks round-trip bit-exact (decoded by
 * zarrita's codec implementations through the metadata the store would write).
 */
import { describe, expect, it } from 'vitest';
import * as zarr from 'zarrita';
import { ENUMS } from '../src/config/config.js';
import { CODEC_IDS } from '../workers/codecs/codec-ids.js';
import { CODECS, codecById } from '../workers/codecs/registry.js';
import { chunkCodecMetadata, encodeChunk, encodeChunkAsync, resolveCodec, wantsPreShuffled } from '../workers/codecs/chunk-codec.js';

describe('the codec registry', () => {
  it('lists exactly the ids the configuration accepts, one descriptor each', () => {
    expect(CODECS.map((c) => c.id).sort()).toEqual([...CODEC_IDS].sort());
    expect([...ENUMS['storage.codec']].sort()).toEqual([...CODEC_IDS].sort());
    expect(() => codecById('snappy')).toThrow(/unknown codec "snappy"; known: blosc-zstd/);
  });

  for (const id of CODEC_IDS) {
    it(`${id}: a chunk written with its metadata reads back bit-exact through zarrita`, async () => {
      const c = resolveCodec(id, 1, 0, true);
      const shape = [1, 1, 4, 32, 32];
      const raw = new Uint16Array(4 * 32 * 32);
      for (let i = 0; i < raw.length; i++) raw[i] = 100 + (((i * 2654435761) >>> 20) % 900);
      const bytes = new Uint8Array(raw.buffer);
      expect(wantsPreShuffled(c, bytes.length, 2)).toBe(c.effective.startsWith('blosc-'));
      const enc = c.async ? await encodeChunkAsync(bytes.slice(), c) : encodeChunk(bytes.slice(), 2, c, false);
      const store = new Map<string, Uint8Array>();
      store.set(
        '/zarr.json',
        new TextEncoder().encode(
          JSON.stringify({
            zarr_format: 3,
            node_type: 'array',
            shape,
            data_type: 'uint16',
            chunk_grid: { name: 'regular', configuration: { chunk_shape: shape } },
            chunk_key_encoding: { name: 'default', configuration: { separator: '/' } },
            fill_value: 0,
            codecs: chunkCodecMetadata(c, 2, bytes.length),
            attributes: {},
          }),
        ),
      );
      store.set('/c/0/0/0/0/0', enc);
      const arr = await zarr.open.v3({ get: async (k: string) => store.get(k) }, { kind: 'array' });
      const got = await zarr.get(arr, [0, 0, null, null, null]);
      expect(Buffer.from((got.data as Uint16Array).buffer).equals(Buffer.from(raw.buffer))).toBe(true);
    });
  }
});
