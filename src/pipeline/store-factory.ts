/**
 * Opens the OME-Zarr images of one acquisition: one per view, `<name>.ome.zarr`, or
 * `<name>_view<k>.ome.zarr` when the ring declares several views; with the image metadata the
 * config, the page's sample metadata and the ring's geometry say.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { RingHeader } from '../ingest/ring-layout.js';
import { AcquisitionStore, type StoreError } from '../zarr/acquisition-store.js';
import { makeLayout, tilesX, tilesY, type ArrayLayout } from '../zarr/layout.js';
import { arrayMetadata } from '../zarr/metadata.js';
import { appendProblems } from '../zarr/append-check.js';
import { chunkCodecMetadata, resolveCodec, wantsPreShuffled, type ResolvedCodec } from '../../workers/codecs/chunk-codec.js';
import type { TileGeometry } from '../../workers/kernels/tiles.js';
import { VERSION } from '../package-info.js';
import { levelFactors, planPyramid } from './pyramid-stage.js';
import { acquisitionName } from './naming.js';

/** The arrays an acquisition of this geometry writes: level 0's layout and tiles, and the pyramid's levels. */
export function planArrays(
  cfg: Config,
  codec: ResolvedCodec,
  dims: { c: number; z: number; h: number; w: number },
  bpp: number,
): {
  layout: ArrayLayout;
  geometry: TileGeometry;
  plan: ReturnType<typeof planPyramid>;
} {
  const st = cfg.storage;
  const layout = makeLayout({ t: 1, ...dims }, st.chunk, st.sharding ? st.shard : null, bpp);
  const [, , cz, cy, cx] = layout.chunk;
  const geometry: TileGeometry = {
    width: dims.w,
    height: dims.h,
    bytesPerPixel: bpp,
    cz,
    cy,
    cx,
    tilesX: tilesX(layout),
    tilesY: tilesY(layout),
    shuffled: bpp === 2 && wantsPreShuffled(codec, cz * cy * cx * bpp, bpp),
  };
  const plan = planPyramid(
    layout,
    geometry,
    st.levels,
    st.chunk,
    st.sharding ? st.shard : null,
    (bytes) => bpp === 2 && wantsPreShuffled(codec, bytes, bpp),
  );
  return { layout, geometry, plan };
}

const codecsOf = (codec: ResolvedCodec, bpp: number, l: ArrayLayout) =>
  chunkCodecMetadata(codec, bpp, l.chunk[2] * l.chunk[3] * l.chunk[4] * bpp);

/**
 * `--append` checked before anything starts, where the store's name is fixed (no {date}-like
 * fields): the existing images must be what this configuration writes for their geometry. One line
 * naming the key and both values, or null. Run-time checks (ring geometry) follow at acquisition start.
 */
export function appendRefusal(cfg: Config): string | null {
  const st = cfg.storage;
  if (st.name.includes('{') || !fs.existsSync(st.out)) return null;
  const codec = resolveCodec(st.codec, st.clevel, st.blocksize, st.checksum);
  const name = acquisitionName(st.name, 1, {});
  const roots = fs
    .readdirSync(st.out)
    .filter((d) => d === `${name}.ome.zarr` || (d.startsWith(name) && /^_view\d+\.ome\.zarr$/.test(d.slice(name.length))));
  for (const r of roots) {
    const root = path.join(st.out, r);
    let have: { shape?: number[]; data_type?: string };
    try {
      have = JSON.parse(fs.readFileSync(path.join(root, '0', 'zarr.json'), 'utf8')) as typeof have;
    } catch (e) {
      return `cannot append to ${root}: 0/zarr.json is missing or not JSON (${(e as Error).message})`;
    }
    const [, c, z, h, w] = have.shape ?? [];
    const dtype = have.data_type === 'uint8' ? 'uint8' : 'uint16';
    if (![c, z, h, w].every((v) => Number.isInteger(v) && v > 0))
      return `cannot append to ${root}: its array shape ${JSON.stringify(have.shape)} is not [t, c, z, y, x]`;
    const bpp = dtype === 'uint8' ? 1 : 2;
    const { plan } = planArrays(cfg, codec, { c, z, h, w }, bpp);
    const want = plan.layouts.map((l) => arrayMetadata(l, dtype, codecsOf(codec, bpp, l)));
    const problems = appendProblems(root, want, st.downsample);
    if (problems.length > 0) return `cannot append to ${root}: ${problems.join('; ')}; the store is left as it is`;
  }
  return null;
}

export interface OpenStoresInput {
  cfg: Config;
  header: RingHeader;
  layout: ArrayLayout;
  /** Pyramid levels 1..n (empty = none). */
  levels: ArrayLayout[];
  codec: ResolvedCodec;
  name: string;
  id: number;
  ringPath: string;
  metadata: Record<string, unknown>;
  overwrite: boolean;
  append: boolean;
  /** Config keys nobody set for this producer (config.ts assumedKeys): not written as facts. */
  assumed: string[];
  onError: (e: StoreError, frames: number) => void;
  onChunkDone: (chunk: Uint8Array) => void;
  onShard: (file: string, bytes: number, sha256: string) => void;
  onWriteMode?: (direct: boolean, message: string) => void;
}

/** Throws StoreError (one line) when a store cannot be created. */
export function openAcquisitionStores(o: OpenStoresInput): AcquisitionStore[] {
  const { cfg, header: h, layout } = o;
  const bpp = layout.bytesPerPixel;
  const stores: AcquisitionStore[] = [];
  const levelCodecs = (l: ArrayLayout) => codecsOf(o.codec, bpp, l);
  const factors = levelFactors([layout, ...o.levels]);
  for (let v = 0; v < h.views; v++) {
    const root = path.resolve(cfg.storage.out, `${o.name}${h.views > 1 ? `_view${v}` : ''}.ome.zarr`);
    stores.push(
      AcquisitionStore.create({
        root,
        layout,
        dtype: h.dtype,
        innerCodecs: levelCodecs(layout),
        levels: o.levels.map((l) => ({ layout: l, innerCodecs: levelCodecs(l) })),
        image: {
          name: o.name,
          channels: Array.from({ length: h.channels }, (_, c) => ({
            name: cfg.channels[c]?.name ?? `ch${c}`,
            color: cfg.channels[c]?.color ?? 'FFFFFF',
          })),
          pixelSizeUm: o.assumed.includes('pixel_size_um') ? null : cfg.pixel_size_um,
          timeStepS: o.assumed.includes('time_step_s') ? null : cfg.time_step_s,
          levels: factors.map((factor) => ({ factor })),
          downsample: cfg.storage.downsample,
          window: {
            min: 0,
            max: cfg.camera.saturation_level,
            start: cfg.camera.offset,
            end: Math.min(cfg.camera.saturation_level, cfg.camera.offset * 20),
          },
          acquisition: {
            ...cfg.metadata,
            ...o.metadata,
            start_time: new Date().toISOString(),
            acquisition_id: o.id,
            camera: cfg.camera,
            ring: o.ringPath,
            spimstream_version: VERSION,
            view: v,
            views: h.views,
            codec: { requested: o.codec.requested, effective: o.codec.effective, implementation: o.codec.implementation },
            ...(o.assumed.length > 0 ? { unknown: o.assumed } : {}),
          },
        },
        overwrite: o.overwrite,
        append: o.append,
        onError: o.onError,
        onChunkDone: o.onChunkDone,
        onShard: o.onShard,
        directIo: cfg.storage.direct_io === 'auto',
        onWriteMode: o.onWriteMode,
      }),
    );
  }
  return stores;
}
