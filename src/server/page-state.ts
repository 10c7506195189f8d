/**
 * What the page is told: `hello` (geometry, streams, thresholds, metadata, alerts firing) when it
 * connects or an acquisition starts, and `status` (counters, fill levels, per-stream rates) once a
 * second. Read from the pipeline, stream QC and alerts; nothing here changes them.
 */
import type { Config } from '../config/config.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { AlertEngine } from '../qc/alerts.js';
import type { StreamQc } from '../qc/stream-qc.js';
import { diskFree } from '../zarr/disk.js';
import { VERSION } from '../package-info.js';
import type { OffloadStatus } from '../offload/offload-status.js';
import { type StreamKey, streamId } from '../pipeline/events.js';

export interface PageSources {
  cfg: Config;
  pipeline: Pipeline;
  alerts: AlertEngine;
  streamQc: StreamQc;
  metadata: () => Record<string, unknown>;
  /** Offload state (null when offload is off). */
  offload: () => OffloadStatus | null;
  /** Seconds until the output disk reaches storage.min_free_bytes at the last minute's net inflow. */
  diskFullIn: () => number;
}

export function helloMessage(s: PageSources): Record<string, unknown> {
  const { cfg, pipeline } = s;
  const h = pipeline.header;
  const channels = Array.from({ length: h?.channels ?? cfg.channels.length }, (_, c) => cfg.channels[c]?.name ?? `ch${c}`);
  return {
    version: VERSION,
    camera: cfg.camera.name,
    streams: streamList(channels, h?.views ?? 1, cfg.camera.name),
    channel_colors: Object.fromEntries(cfg.channels.map((c) => [c.name, c.color])),
    saturation_level: cfg.camera.saturation_level,
    offset: cfg.camera.offset,
    bit_depth: h?.bitDepth ?? cfg.camera.bit_depth,
    thresholds: cfg.qc.thresholds,
    pixel_size_um: cfg.pixel_size_um,
    focus_measures: cfg.qc.focus,
    geometry: h ? { width: h.width, height: h.height, z_planes: h.zPlanes } : null,
    metadata: s.metadata(),
    alerts: [...s.alerts.active.values()].map((a) => ({
      name: a.name,
      stream: a.stream ? streamId(a.stream) : null,
      active: true,
      message: a.message,
      value: a.value,
    })),
    token_required: cfg.server.token !== '',
  };
}

export function statusMessage(s: PageSources, viewers: number): Record<string, unknown> {
  const { cfg, pipeline } = s;
  const c = pipeline.counters;
  const st = pipeline.status();
  return {
    acquisition: st.acquisition,
    frames_received: c.framesReceived,
    frames_overrun: c.framesOverrun,
    frames_gap: c.framesGap,
    frames_torn: c.framesTorn,
    qc_sampled: c.qcSampled,
    qc_sampled_reasons: c.qcSampledReasons,
    previews_throttled: c.previewsThrottled,
    frames_unstored: c.framesUnstored,
    bytes_received: c.bytesReceived,
    bytes_written: c.bytesWritten,
    compression_ratio: c.bytesWritten > 0 ? c.bytesRawStored / c.bytesWritten : 0,
    disk_free_bytes: cfg.storage.enabled ? diskFree(cfg.storage.out) : null,
    disk_full_in_s: cfg.storage.enabled && Number.isFinite(s.diskFullIn()) ? s.diskFullIn() : null,
    ring_fill_ratio: pipeline.ringFill,
    storage_error: pipeline.storingDisabledReason,
    preview_clients: viewers,
    attached: st.attached,
    offload: s.offload(),
    streams: Object.fromEntries(
      [...s.streamQc.streams.values()].map((x) => [
        streamId(x.stream),
        {
          fps: x.timing.get().fps,
          jitter_s: x.timing.get().jitterSeconds,
          intensity_relative: x.intensityRelative,
          best_focus_z: x.lastStack?.bestFocusZ ?? null,
        },
      ]),
    ),
  };
}

/** Every stream of the ring: one per channel and view, with its id ("GFP/0"). */
export function streamList(channels: string[], views: number, camera: string): (StreamKey & { id: string })[] {
  const out: (StreamKey & { id: string })[] = [];
  for (let v = 0; v < views; v++) for (const ch of channels) out.push({ id: `${ch}/${v}`, camera, channel: ch, view: String(v) });
  return out;
}
