/**
 * Array geometry of one acquisition: shape (t, c, z, y, x), inner chunk and shard shapes, and the
 * mapping from z-blocks and tiles to chunk / shard keys. Pure arithmetic, shared by the writer and tests.
 */
export interface ArrayLayout {
  /** [T, C, Z, H, W]; T grows as timepoints arrive. */
  shape: [number, number, number, number, number];
  /** Inner chunk [1, 1, cz, cy, cx]. */
  chunk: [number, number, number, number, number];
  /** Shard [1, 1, sz, sy, sx] (a multiple of chunk), or null for an unsharded array. */
  shard: [number, number, number, number, number] | null;
  bytesPerPixel: number;
}

export function makeLayout(
  dims: { t: number; c: number; z: number; h: number; w: number },
  chunkZyx: number[],
  shardZyx: number[] | null,
  bytesPerPixel: number,
): ArrayLayout {
  const cz = Math.min(chunkZyx[0], dims.z);
  const cy = Math.min(chunkZyx[1], dims.h);
  const cx = Math.min(chunkZyx[2], dims.w);
  const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;
  let shard: ArrayLayout['shard'] = null;
  if (shardZyx) {
    // 0 = the whole axis (rounded up to whole chunks); requests larger than the axis are clamped.
    const pick = (s: number, c: number, full: number) => Math.min(s === 0 ? roundUp(full, c) : roundUp(s, c), roundUp(full, c));
    shard = [1, 1, pick(shardZyx[0], cz, dims.z), pick(shardZyx[1], cy, dims.h), pick(shardZyx[2], cx, dims.w)];
  }
  return { shape: [dims.t, dims.c, dims.z, dims.h, dims.w], chunk: [1, 1, cz, cy, cx], shard, bytesPerPixel };
}

/** Chunks per shard along z, y, x. */
export function chunksPerShard(l: ArrayLayout): [number, number, number] {
  if (!l.shard) return [1, 1, 1];
  return [l.shard[2] / l.chunk[2], l.shard[3] / l.chunk[3], l.shard[4] / l.chunk[4]];
}

/** The storage key ("default" encoding, "/" separator) of the chunk or shard at grid indices. */
export function gridKey(idx: number[]): string {
  return `c/${idx.join('/')}`;
}

export function tilesY(l: ArrayLayout): number {
  return Math.ceil(l.shape[3] / l.chunk[3]);
}

export function tilesX(l: ArrayLayout): number {
  return Math.ceil(l.shape[4] / l.chunk[4]);
}

export function zBlocks(l: ArrayLayout): number {
  return Math.ceil(l.shape[2] / l.chunk[2]);
}

/** Extra levels for `storage.levels`: a count, or 'auto' = halve until a level fits one chunk in y and x. */
export function levelCount(levels: number | 'auto', h: number, w: number, chunkY: number, chunkX: number): number {
  if (levels !== 'auto') return levels;
  let n = 0;
  for (let hh = h, ww = w; hh > chunkY || ww > chunkX; hh = (hh + 1) >> 1, ww = (ww + 1) >> 1) n++;
  return n;
}

/**
 * The layouts of levels 0..n: each halves y and x (rounding up), and z while the level above has
 * more than one plane; t and c never. Chunk and shard shapes are level 0's, clamped to the level.
 */
export function pyramidLayouts(l0: ArrayLayout, n: number, chunkZyx: number[], shardZyx: number[] | null): ArrayLayout[] {
  const out = [l0];
  for (let k = 1; k <= n; k++) {
    const [t, c, z, h, w] = out[k - 1].shape;
    const half = (v: number) => (v + 1) >> 1;
    out.push(makeLayout({ t, c, z: z > 1 ? half(z) : 1, h: half(h), w: half(w) }, chunkZyx, shardZyx, l0.bytesPerPixel));
  }
  return out;
}
