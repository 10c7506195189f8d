/** zarr.json documents: the OME-Zarr 0.5 image group and its full-resolution array "0". */
import type { ArrayLayout } from './layout.js';

export interface ChannelInfo {
  name: string;
  color: string;
}

export interface ImageMetadataInput {
  name: string;
  channels: ChannelInfo[];
  pixelSizeUm: { x: number; y: number; z: number };
  timeStepS: number;
  /** Contrast window for omero channels (camera range). */
  window: { min: number; max: number; start: number; end: number };
  acquisition: Record<string, unknown>;
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
              { name: 't', type: 'time', unit: 'second' },
              { name: 'c', type: 'channel' },
              { name: 'z', type: 'space', unit: 'micrometer' },
              { name: 'y', type: 'space', unit: 'micrometer' },
              { name: 'x', type: 'space', unit: 'micrometer' },
            ],
            datasets: [
              {
                path: '0',
                coordinateTransformations: [
                  { type: 'scale', scale: [m.timeStepS, 1, m.pixelSizeUm.z, m.pixelSizeUm.y, m.pixelSizeUm.x] },
                ],
              },
            ],
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
