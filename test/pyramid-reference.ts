/**
 * The reference downsampling for the pyramid tests, written from the definition (not from the
 * kernels): each output voxel from the samples of its 2 x 2 (x 2) window that exist.
 */
export type Method = 'mean' | 'max' | 'decimate';

/** A 5-D volume [t][c][z][y][x] flattened. */
export interface Vol {
  shape: number[];
  data: Float64Array;
}

/** The reference: each output voxel from the samples of its window that exist. */
export function downsample(v: Vol, method: Method): Vol {
  const [T, C, Z, H, W] = v.shape;
  const Z2 = Z > 1 ? Math.ceil(Z / 2) : 1;
  const H2 = Math.ceil(H / 2);
  const W2 = Math.ceil(W / 2);
  const out = new Float64Array(T * C * Z2 * H2 * W2);
  const at = (t: number, c: number, z: number, y: number, x: number) => v.data[(((t * C + c) * Z + z) * H + y) * W + x];
  let o = 0;
  for (let t = 0; t < T; t++)
    for (let c = 0; c < C; c++)
      for (let z = 0; z < Z2; z++)
        for (let y = 0; y < H2; y++)
          for (let x = 0; x < W2; x++) {
            const zs = Z > 1 ? [2 * z, 2 * z + 1].filter((q) => q < Z) : [0];
            const ys = [2 * y, 2 * y + 1].filter((q) => q < H);
            const xs = [2 * x, 2 * x + 1].filter((q) => q < W);
            const vals: number[] = [];
            for (const zz of zs) for (const yy of ys) for (const xx of xs) vals.push(at(t, c, zz, yy, xx));
            let r: number;
            if (method === 'decimate') r = vals[0];
            else if (method === 'max') r = Math.max(...vals);
            else {
              const sum = vals.reduce((a, b) => a + b, 0);
              const q = Math.floor(sum / vals.length);
              const rem = sum - q * vals.length;
              r = 2 * rem > vals.length || (2 * rem === vals.length && q % 2 === 1) ? q + 1 : q;
            }
            out[o++] = r;
          }
  return { shape: [T, C, Z2, H2, W2], data: out };
}
