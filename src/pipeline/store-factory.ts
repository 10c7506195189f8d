/**
 * Opens the OME-Zarr images of one acquisition: one per view, `<name>.ome.zarr`, or
 * `<name>_view<k>.ome.zarr` when the ring declares several views; with the image metadata the
 * config, the page's sample metadata and the ring's geometry say.
 */
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { RingHeader } from '../ingest/ring-layout.js';
import { AcquisitionStore, type StoreError } from '../zarr/acquisition-store.js';
import type { ArrayLayout } from '../zarr/layout.js';
import { chunkCodecMetadata, type ResolvedCodec } from '../../workers/codecs/chunk-codec.js';
import { VERSION } from '../package-info.js';
import { levelFactors } from './pyramid-stage.js';

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
  const codecsOf = (l: ArrayLayout) => chunkCodecMetadata(o.codec, bpp, l.chunk[2] * l.chunk[3] * l.chunk[4] * bpp);
  const factors = levelFactors([layout, ...o.levels]);
  for (let v = 0; v < h.views; v++) {
    const root = path.resolve(cfg.storage.out, `${o.name}${h.views > 1 ? `_view${v}` : ''}.ome.zarr`);
    stores.push(AcquisitionStore.create({
      root, layout, dtype: h.dtype, innerCodecs: codecsOf(layout),
      levels: o.levels.map((l) => ({ layout: l, innerCodecs: codecsOf(l) })),
      image: {
        name: o.name,
        channels: Array.from({ length: h.channels }, (_, c) => ({
          name: cfg.channels[c]?.name ?? `ch${c}`, color: cfg.channels[c]?.color ?? 'FFFFFF',
        })),
        pixelSizeUm: o.assumed.includes('pixel_size_um') ? null : cfg.pixel_size_um,
        timeStepS: o.assumed.includes('time_step_s') ? null : cfg.time_step_s,
        levels: factors.map((factor) => ({ factor })), downsample: cfg.storage.downsample,
        window: { min: 0, max: cfg.camera.saturation_level, start: cfg.camera.offset, end: Math.min(cfg.camera.saturation_level, cfg.camera.offset * 20) },
        acquisition: {
          ...cfg.metadata, ...o.metadata, start_time: new Date().toISOString(), acquisition_id: o.id,
          camera: cfg.camera, ring: o.ringPath, spimstream_version: VERSION, view: v, views: h.views,
          codec: { requested: o.codec.requested, effective: o.codec.effective, implementation: o.codec.implementation },
          ...(o.assumed.length > 0 ? { unknown: o.assumed } : {}),
        },
      },
      overwrite: o.overwrite, append: o.append,
      onError: o.onError, onChunkDone: o.onChunkDone, onShard: o.onShard,
      directIo: cfg.storage.direct_io === 'auto', onWriteMode: o.onWriteMode,
    }));
  }
  return stores;
}
