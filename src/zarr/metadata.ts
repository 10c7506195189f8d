/** zarr.json documents: the OME-Zarr 0.5 image group and its arrays "0" (full resolution), "1", ... (the pyramid). */
import type { ArrayLayout } from './layout.js';

export interface ChannelInfo {
  name: string;
  color: string;
}

export interface ImageMetadataInput {
  name: string;
  channels: ChannelInfo[];
  /** Null: not known (no unit is claimed; the scale is in pixels). */
  pixelSizeUm: { x: number; y: number; z: number } | null;
  /** Null: not known (no unit is claimed; the scale is in timepoints). */
  timeStepS: number | null;
  /** Contrast window for omero channels (camera range). */
  window: { min: number; max: number; start: number; end: number };
  acquisition: Record<string, unknown>;
  /** Per level (0 first): the factor on z, y, x from level 0; one entry = no pyramid. */
  levels?: { factor: [number, number, number] }[];
  /** The pyramid's downsampling method. */
  downsample?: string;
}

/** One multiscales dataset per level: scale, and the translation of a window's centre (mean, max). */
function datasets(m: ImageMetadataInput): Record<string, unknown>[] {
  const levels = m.levels ?? [{ factor: [1, 1, 1] }];
  const px = m.pixelSizeUm ? [m.pixelSizeUm.z, m.pixelSizeUm.y, m.pixelSizeUm.x] : [1, 1, 1];
  const centred = m.downsample === 'mean' || m.downsample === 'max';
  return levels.map((l, k) => {
    const scale = [m.timeStepS ?? 1, 1, ...l.factor.map((f, i) => f * px[i])];
    const tr: Record<string, unknown>[] = [{ type: 'scale', scale }];
    // A level-k pixel covers level-0 pixels 0..f-1: its centre sits (f - 1) / 2 pixels in.
    if (k > 0 && centred) tr.push({ type: 'translation', translation: [0, 0, ...l.factor.map((f, i) => ((f - 1) / 2) * px[i])] });
    return { path: String(k), coordinateTransformations: tr };
  });
}

export function groupMetadata(m: ImageMetadataInput): Record<string, unknown> {
  return {
    zarr_format: 3,
    node_type: 'group',
    attributes: {
      ome: {
        version: '0.5',
        multiscales: [
          {
            name: m.name,
            axes: [
              { name: 't', type: 'time', ...(m.timeStepS === null ? {} : { unit: 'second' }) },
              { name: 'c', type: 'channel' },
              ...['z', 'y', 'x'].map((name) => ({ name, type: 'space', ...(m.pixelSizeUm === null ? {} : { unit: 'micrometer' }) })),
            ],
            datasets: datasets(m),
            ...((m.levels?.length ?? 1) > 1
              ? {
                  type: m.downsample,
                  metadata: {
                    description:
                      'spimstream live pyramid: y and x halved over 2 x 2 windows, z over plane pairs while a level has more than one plane',
                    method: m.downsample,
                    ...(m.downsample === 'mean' ? { rounding: 'half to even' } : {}),
                  },
                }
              : {}),
          },
        ],
        omero: {
          name: m.name,
          version: '0.5',
          channels: m.channels.map((c) => ({
            label: c.name,
            color: c.color,
            active: true,
            window: { ...m.window },
          })),
          rdefs: { model: 'color', defaultT: 0, defaultZ: 0 },
        },
      },
      spimstream: m.acquisition,
    },
  };
}

export function arrayMetadata(l: ArrayLayout, dtype: string, innerCodecs: Record<string, unknown>[]): Record<string, unknown> {
  const common = {
    zarr_format: 3,
    node_type: 'array',
    shape: l.shape,
    data_type: dtype,
    chunk_key_encoding: { name: 'default', configuration: { separator: '/' } },
    fill_value: 0,
    dimension_names: ['t', 'c', 'z', 'y', 'x'],
    attributes: {},
  };
  if (!l.shard) {
    return { ...common, chunk_grid: { name: 'regular', configuration: { chunk_shape: l.chunk } }, codecs: innerCodecs };
  }
  return {
    ...common,
    chunk_grid: { name: 'regular', configuration: { chunk_shape: l.shard } },
    codecs: [
      {
        name: 'sharding_indexed',
        configuration: {
          chunk_shape: l.chunk,
          codecs: innerCodecs,
          index_codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'crc32c' }],
          index_location: 'end',
        },
      },
    ],
  };
}
