/** gzip (fflate): every Zarr reader decodes it; ~20–45 MB/s per core on noisy uint16, so not the default. */
import { gzipSync } from 'fflate';
import type { CodecDescriptor } from './codec.js';

export const gzipCodec: CodecDescriptor = {
  id: 'gzip',
  needs: null,
  async: false,
  split: false,
  implementation: () => 'fflate gzip',
  level: (clevel) => Math.min(9, clevel),
  metadata: (c) => [{ name: 'gzip', configuration: { level: c.clevel } }],
  preShuffled: () => false,
  encode: (raw, _typesize, c) => gzipSync(raw, { level: c.clevel as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9, mtime: 0 }),
};
