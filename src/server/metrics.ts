/**
 * Prometheus exposition (prom-client), fed only by the event bus and read-only sources. The
 * metrics are declared by domain, each a table in ./metrics/: ingest, storage, QC, pyramid,
 * offload, process. Per-stream series carry camera/channel/view labels; nothing is labelled per
 * frame, z or t (bounded cardinality).
 */
import client from 'prom-client';
import type { EventBus } from '../pipeline/events.js';
import { ingestMetrics } from './metrics/ingest-metrics.js';
import type { MetricsContext, MetricsSources } from './metrics/metric-kit.js';
import { offloadMetrics } from './metrics/offload-metrics.js';
import { processMetrics } from './metrics/process-metrics.js';
import { pyramidMetrics } from './metrics/pyramid-metrics.js';
import { qcMetrics } from './metrics/qc-metrics.js';
import { storageMetrics } from './metrics/storage-metrics.js';

export type { MetricsSources } from './metrics/metric-kit.js';

export class Metrics {
  readonly registry: client.Registry;

  constructor(bus: EventBus, camera: string, info: Record<string, string>, sources: MetricsSources) {
    const ctx: MetricsContext = { bus, camera, sources, registry: new client.Registry() };
    ingestMetrics(ctx);
    storageMetrics(ctx);
    qcMetrics(ctx);
    pyramidMetrics(ctx);
    offloadMetrics(ctx);
    processMetrics(ctx, info);
    this.registry = client.Registry.merge([ctx.registry, nodeDefaults()]);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** prom-client's process and Node metrics, without the gauges named *_total that promtool's lint rejects. */
function nodeDefaults(): client.Registry {
  const defaults = new client.Registry();
  client.collectDefaultMetrics({ register: defaults });
  for (const m of defaults.getMetricsAsArray()) {
    if (m.name.endsWith('_total') && m instanceof client.Gauge) defaults.removeSingleMetric(m.name);
  }
  return defaults;
}
