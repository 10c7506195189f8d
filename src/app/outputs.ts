/**
 * Builds what the pipeline's events feed besides the page: alerts, the manifest and QC report of
 * each finished acquisition, and the offloader. Owns the one ordering that matters at the end of an
 * acquisition, written out here rather than implied by the order listeners were registered.
 */
import type { Config } from '../config/config.js';
import { publicConfig, type Secrets } from '../config/secrets.js';
import { ManifestWriter } from '../offload/manifest.js';
import { Offloader } from '../offload/offloader.js';
import type { EventBus } from '../pipeline/events.js';
import { AlertEngine } from '../qc/alerts.js';
import { diskFree } from '../zarr/disk.js';
import { VERSION } from '../package-info.js';
import type { Processing } from './processing.js';

export interface Outputs {
  alerts: AlertEngine;
  offloader: Offloader | null;
}

/** assumed: producer facts nobody configured (config.ts assumedKeys); the report claims none of them. */
export function buildOutputs(cfg: Config, bus: EventBus, secrets: Secrets, { pipeline, streamQc }: Processing, assumed: string[]): Outputs {
  const manifests = new ManifestWriter(bus, {
    version: VERSION,
    ring: () => (pipeline.header ? pipeline.ringPath : null),
    pixelSizeUm: () => cfg.pixel_size_um.x,
    timeStepS: () => (assumed.includes('time_step_s') ? null : cfg.time_step_s),
    config: () => publicConfig(cfg, secrets),
    redact: (text) => secrets.redact(text),
  });
  // The end of an acquisition, in this order: QC judges the last open stacks (they go into the
  // manifest), then each store's manifest is written; the offloader sends a store's manifest last,
  // when it hears 'manifest-written'.
  bus.on('acquisition-finished', (e) => {
    streamQc.finishAcquisition();
    manifests.finish(e);
  });
  const offloader = cfg.offload.destination ? new Offloader(cfg, bus) : null;
  const alerts = new AlertEngine(bus, cfg, {
    ringFill: () => pipeline.ringFill,
    diskFree: () => (cfg.storage.enabled ? diskFree(cfg.storage.out) : null),
  });
  return { alerts, offloader };
}
