/**
 * The vocabulary of the metric tables: a metric is declared once as a spec (kind, name, help,
 * labels, optional collect-on-scrape) and `register` turns a table of specs into typed prom-client
 * instances. Each domain file (ingest, storage, qc, offload, pyramid, process) is one such table
 * plus the bus events that feed it.
 */
import client from 'prom-client';
import type { EventBus, StreamKey } from '../../pipeline/events.js';
import type { StreamState } from '../../qc/stream-qc.js';

/** Per-stream label names: bounded cardinality, never per frame, z or t. */
export const SL = ['camera', 'channel', 'view'] as const;

export const streamLabels = (s: StreamKey): Record<(typeof SL)[number], string> => ({ camera: s.camera, channel: s.channel, view: s.view });

/** What the sidecar can answer at scrape time (gauges that are read, not pushed). */
export interface MetricsSources {
  ringFillRatio(): number;
  /** Whether storing is configured (storage.enabled); off, the disk series are absent and storage_ok is 1. */
  storageEnabled(): boolean;
  diskFreeBytes(): number | null;
  /** Seconds until the output disk reaches storage.min_free_bytes at the last minute's net inflow (null: storage off). */
  diskFullInSeconds(): number | null;
  previewClients(): number;
  /** Viewer messages not sent, by reason: backlog (the viewer's send buffer full), volume-budget. */
  viewerMessagesSkipped(): Record<string, number>;
  framePoolInUseRatio(): number;
  /** Longest pause between two ring polls of the ingest thread since the last scrape, ms. */
  ingestMaxPollGapMs(): number;
  blockPoolInUseRatio(): number;
  streams(): Iterable<StreamState>;
  focusMeasure(): string;
  /** Lateral pixel size, µm (drift in metres). */
  pixelSizeUm(): number;
  /** Offload backlog (null when offload is off). */
  offloadBacklog(): { bytes: number; lagSeconds: number; urgent: boolean } | null;
}

/** What every domain table is wired with. */
export interface MetricsContext {
  bus: EventBus;
  camera: string;
  sources: MetricsSources;
  registry: client.Registry;
}

type Collect<M> = (metric: M) => void;

interface Base<K extends string> {
  kind: K;
  name: string;
  help: string;
  labels: readonly string[];
}
export interface CounterSpec extends Base<'counter'> {
  collect?: Collect<client.Counter>;
}
export interface GaugeSpec extends Base<'gauge'> {
  collect?: Collect<client.Gauge>;
}
export interface HistogramSpec extends Base<'histogram'> {
  buckets: number[];
}
export type MetricSpec = CounterSpec | GaugeSpec | HistogramSpec;

export const counter = (name: string, help: string, labels: readonly string[], collect?: Collect<client.Counter>): CounterSpec => ({
  kind: 'counter',
  name,
  help,
  labels,
  collect,
});
export const gauge = (name: string, help: string, labels: readonly string[], collect?: Collect<client.Gauge>): GaugeSpec => ({
  kind: 'gauge',
  name,
  help,
  labels,
  collect,
});
export const histogram = (name: string, help: string, labels: readonly string[], buckets: number[]): HistogramSpec => ({
  kind: 'histogram',
  name,
  help,
  labels,
  buckets,
});

export type Registered<T extends Record<string, MetricSpec>> = {
  [K in keyof T]: T[K] extends CounterSpec ? client.Counter : T[K] extends GaugeSpec ? client.Gauge : client.Histogram;
};

/** Creates every metric of a table in `registry`, in table order (the order /metrics lists them). */
export function register<T extends Record<string, MetricSpec>>(registry: client.Registry, table: T): Registered<T> {
  const out: Record<string, client.Counter | client.Gauge | client.Histogram> = {};
  for (const [key, s] of Object.entries(table)) {
    const common = { name: s.name, help: s.help, labelNames: s.labels, registers: [registry] };
    if (s.kind === 'histogram') out[key] = new client.Histogram({ ...common, buckets: s.buckets });
    else if (s.kind === 'counter') {
      const collect = s.collect;
      out[key] = new client.Counter({
        ...common,
        ...(collect
          ? {
              collect(this: client.Counter) {
                collect(this);
              },
            }
          : {}),
      });
    } else {
      const collect = s.collect;
      out[key] = new client.Gauge({
        ...common,
        ...(collect
          ? {
              collect(this: client.Gauge) {
                collect(this);
              },
            }
          : {}),
      });
    }
  }
  return out as Registered<T>;
}
