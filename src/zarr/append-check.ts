/**
 * Whether an existing image may be continued (`--append`): every array's zarr.json must be the one
 * this run would write, but for the time axis — data type, shape, chunk and shard shapes, the whole
 * codec chain with its parameters, the index checksum, the level count and the downsampling. A
 * difference is named by the config key it comes from, with both values, so the refusal is one line
 * a person can act on; the store is not touched.
 */
import fs from 'node:fs';
import path from 'node:path';

type Json = unknown;

const show = (v: Json): string => (v === undefined ? 'none' : JSON.stringify(v));

/** Leaves that differ between a and b, as [path, a, b] (a missing leaf is undefined). */
function diff(a: Json, b: Json, at: string, out: [string, Json, Json][]): void {
  const obj = (v: Json) => v !== null && typeof v === 'object';
  if (obj(a) && obj(b) && Array.isArray(a) === Array.isArray(b)) {
    const ka = Object.keys(a as object);
    const keys = [...new Set([...ka, ...Object.keys(b as object)])];
    for (const k of keys) {
      const p = Array.isArray(a) ? `${at}[${k}]` : at ? `${at}.${k}` : k;
      diff((a as Record<string, Json>)[k], (b as Record<string, Json>)[k], p, out);
    }
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push([at, a, b]);
}

/** The config key (or ring property) a difference at `p` in an array's zarr.json comes from. */
function keyOf(p: string, a: Json, b: Json, sharded: boolean): string {
  if (p === 'data_type') return "the ring's dtype";
  if (/^(fill_value|dimension_names|chunk_key_encoding|zarr_format|node_type)/.test(p)) return 'the array format';
  if (/^shape\[/.test(p)) return "the ring's geometry (channels, planes, height, width)";
  if (p === 'codecs[0].name' || (p.startsWith('codecs[0]') && (a === undefined || b === undefined) && !p.includes('.configuration.')))
    return 'storage.sharding';
  if (p.startsWith('chunk_grid')) return sharded ? 'storage.shard' : 'storage.chunk';
  if (p.startsWith('codecs[0].configuration.chunk_shape')) return 'storage.chunk';
  if (p.includes('index_codecs') || p.includes('index_location')) return 'the shard index';
  if (show(a).includes('"crc32c"') || show(b).includes('"crc32c"')) return 'storage.checksum';
  if (/\.(clevel|level)$/.test(p)) return 'storage.clevel';
  if (/\.blocksize$/.test(p)) return 'storage.blocksize';
  return 'storage.codec';
}

/** Problems continuing `root` with arrays whose zarr.json this run would write (level 0 first). */
export function appendProblems(root: string, expected: Record<string, unknown>[], downsample: string): string[] {
  const levels = fs.readdirSync(root).filter((d) => /^\d+$/.test(d) && fs.existsSync(path.join(root, d, 'zarr.json'))).length;
  if (levels !== expected.length) {
    return [
      `it has ${levels} resolution level(s), the acquisition writes ${expected.length} (set storage.levels to ${Math.max(0, levels - 1)})`,
    ];
  }
  const out: string[] = [];
  const seen = new Set<string>();
  expected.forEach((want, k) => {
    const file = path.join(root, String(k), 'zarr.json');
    let have: Record<string, unknown>;
    try {
      have = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      out.push(`${file} is missing or not JSON (${(e as Error).message})`);
      return;
    }
    const sharded = Array.isArray(have.codecs) && (have.codecs[0] as { name?: string } | undefined)?.name === 'sharding_indexed';
    let found: [string, Json, Json][] = [];
    // The time axis grows by appending: compared as equal; attributes are the run's own.
    const noT = (s: unknown) => (Array.isArray(s) ? [0, ...s.slice(1)] : s);
    diff({ ...have, shape: noT(have.shape), attributes: undefined }, { ...want, shape: noT(want.shape), attributes: undefined }, '', found);
    // Sharded against unsharded: every codec differs; the key that decides is enough.
    const layoutChange = found.find(([p]) => p === 'codecs[0].name');
    if (layoutChange) found = [layoutChange];
    for (const [p, a, b] of found) {
      const key = keyOf(p, a, b, sharded);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(`${key} differs${k > 0 ? ` (level ${k})` : ''}: the store has ${show(a)}, this run writes ${show(b)} (${p})`);
    }
  });
  if (expected.length > 1) {
    try {
      const g = JSON.parse(fs.readFileSync(path.join(root, 'zarr.json'), 'utf8')) as {
        attributes?: { ome?: { multiscales?: { type?: string }[] } };
      };
      const have = g.attributes?.ome?.multiscales?.[0]?.type;
      if (have !== undefined && have !== downsample)
        out.push(`storage.downsample differs: the store has ${show(have)}, this run writes ${show(downsample)}`);
    } catch {
      /* no group: the arrays decide */
    }
  }
  return out;
}
