/** `none`: chunks stored as their raw little-endian bytes (the fastest path; no compression). */
import type { CodecDescriptor } from './codec.js';

export const rawCodec: CodecDescriptor = {
  id: 'none',
  needs: null,
  async: false,
  split: false,
  implementation: () => 'raw',
  level: (clevel) => clevel,
  metadata: () => [],
  preShuffled: () => false,
  encode: (raw) => raw,
};
