/**
 * Builds the processing side: the worker pool, the preview service (the pipeline's preview port),
 * the pipeline itself and per-stream QC. Nothing here listens or writes outside the store.
 */
import { simdUnavailableReason } from '../../workers/kernels/tiles-simd.js';
import type { Config } from '../config/config.js';
import type { EventBus } from '../pipeline/events.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { WorkerPool } from '../pipeline/worker-pool.js';
import { StreamQc } from '../qc/stream-qc.js';
import { PreviewService } from '../server/preview-service.js';

export interface Processing {
  workers: WorkerPool;
  previews: PreviewService;
  pipeline: Pipeline;
  streamQc: StreamQc;
}

export function buildProcessing(cfg: Config, bus: EventBus, ringPath: string, opts: { overwrite: boolean; append: boolean }): Processing {
  const workers = new WorkerPool(cfg.pipeline.workers);
  // The preview side first: the pipeline is built with its port and offers frames through it.
  const previews = new PreviewService(cfg, bus, workers);
  const pipeline = new Pipeline(cfg, bus, workers, ringPath, opts, previews);
  const codec = pipeline.codec;
  if (codec.fallbackReason) bus.emit('log', { level: 'warn', msg: `codec: ${codec.fallbackReason}` });
  const noSimd = cfg.pipeline.kernels === 'simd' ? simdUnavailableReason() : null;
  if (noSimd) {
    bus.emit('log', {
      level: 'warn',
      msg: `kernels: the WebAssembly SIMD kernel is not available (${noSimd}); the JS kernels run (npm run build assembles it)`,
    });
  }
  bus.emit('log', {
    level: 'info',
    msg: 'codec',
    fields: { requested: codec.requested, effective: codec.effective, implementation: codec.implementation, clevel: codec.clevel },
  });
  const streamQc = new StreamQc(
    bus,
    () => pipeline.header?.zPlanes ?? 1,
    () => cfg.qc.focus[0] ?? 'dcts',
    () => 1 - cfg.qc.thresholds.focus_drop_ratio,
    () => ({ saturatedRatio: cfg.qc.thresholds.saturated_ratio, intensityStep: cfg.qc.intensity_step_factor }),
  );
  return { workers, previews, pipeline, streamQc };
}
