/** The Grafana overview dashboard of all sidecars (instance / camera variables), as JSON. */
import type { Config } from '../config/config.js';
import { alertRules } from './alert-rules.js';

const SEL = 'job="spimstream", instance=~"$instance", camera=~"$camera"';

interface PanelDef {
  title: string;
  exprs: { expr: string; legend: string }[];
  unit: string;
  type?: 'timeseries' | 'stat';
  threshold?: { value: number; op: '>' | '<' };
  description?: string;
}

function panels(cfg: Config): PanelDef[] {
  const rule = (n: string) => alertRules(cfg).find((r) => r.name === n);
  const t = (n: string) => {
    const r = rule(n);
    return r ? { value: r.threshold, op: r.op } : undefined;
  };
  return [
    {
      title: 'Sidecars up',
      type: 'stat',
      unit: 'none',
      exprs: [{ expr: 'up{job="spimstream", instance=~"$instance"}', legend: '{{instance}}' }],
    },
    {
      title: 'Input (from the ring)',
      unit: 'Bps',
      exprs: [
        {
          expr: `sum by (instance, camera) (rate(spimstream_bytes_received_total{${SEL}}[$__rate_interval]))`,
          legend: '{{instance}} {{camera}}',
        },
      ],
    },
    {
      title: 'Written to disk (compressed)',
      unit: 'Bps',
      exprs: [
        {
          expr: `sum by (instance, camera) (rate(spimstream_bytes_written_total{${SEL}}[$__rate_interval]))`,
          legend: '{{instance}} {{camera}}',
        },
      ],
    },
    {
      title: 'Compression ratio',
      unit: 'none',
      exprs: [{ expr: `spimstream_compression_ratio{${SEL}}`, legend: '{{instance}} {{camera}}' }],
    },
    {
      title: 'Frame rate',
      unit: 'hertz',
      exprs: [{ expr: `spimstream_frame_rate_hertz{${SEL}}`, legend: '{{camera}} {{channel}} v{{view}}' }],
    },
    {
      title: 'Frames lost (5 min)',
      unit: 'none',
      threshold: t('SpimstreamFramesDropped'),
      exprs: [
        {
          expr: `sum by (instance, camera, reason) (increase(spimstream_frames_dropped_total{${SEL}}[5m]))`,
          legend: '{{instance}} {{camera}} {{reason}}',
        },
        {
          expr: `sum by (instance, camera, reason) (increase(spimstream_frames_unstored_total{${SEL}}[5m]))`,
          legend: '{{instance}} {{camera}} not stored: {{reason}}',
        },
      ],
    },
    {
      title: 'Focus (stack mean)',
      unit: 'none',
      exprs: [{ expr: `spimstream_stack_focus_score{${SEL}}`, legend: '{{camera}} {{channel}} {{measure}}' }],
    },
    {
      title: 'Focus relative to its 30-min baseline',
      unit: 'percentunit',
      threshold: t('SpimstreamFocusLost'),
      exprs: [
        {
          expr: rule('SpimstreamFocusLost')!.value.replace('{job="spimstream"}', `{${SEL}}`).replace('{job="spimstream"}', `{${SEL}}`),
          legend: '{{camera}} {{channel}}',
        },
      ],
    },
    {
      title: 'Saturated pixels (stack max)',
      unit: 'percentunit',
      threshold: t('SpimstreamSaturation'),
      exprs: [{ expr: `spimstream_stack_saturated_pixels_ratio{${SEL}}`, legend: '{{camera}} {{channel}}' }],
    },
    {
      title: 'Under-exposed pixels',
      unit: 'percentunit',
      exprs: [{ expr: `spimstream_underexposed_pixels_ratio{${SEL}}`, legend: '{{camera}} {{channel}}' }],
    },
    {
      title: 'Lateral drift (µm)',
      unit: 'none',
      threshold: t('SpimstreamDrift'),
      exprs: [{ expr: `1e6 * spimstream_drift_meters{${SEL}}`, legend: '{{camera}} {{channel}} {{axis}}' }],
    },
    {
      title: 'Best-focus plane (axial drift proxy)',
      unit: 'none',
      exprs: [{ expr: `spimstream_best_focus_plane{${SEL}}`, legend: '{{camera}} {{channel}}' }],
    },
    {
      title: 'Intensity relative to first timepoint',
      unit: 'percentunit',
      exprs: [{ expr: `spimstream_intensity_relative{${SEL}}`, legend: '{{camera}} {{channel}}' }],
    },
    {
      title: 'Latency ring -> QC (p50, p99)',
      unit: 's',
      exprs: [0.5, 0.99].map((q) => ({
        expr: `histogram_quantile(${q}, sum by (le, instance, camera) (rate(spimstream_frame_latency_seconds_bucket{${SEL}}[$__rate_interval])))`,
        legend: `p${q * 100} {{instance}} {{camera}}`,
      })),
    },
    {
      title: 'QC time per frame (p99)',
      unit: 's',
      exprs: [
        {
          expr: `histogram_quantile(0.99, sum by (le, instance, camera) (rate(spimstream_frame_processing_seconds_bucket{${SEL}}[$__rate_interval])))`,
          legend: '{{instance}} {{camera}}',
        },
      ],
    },
    {
      title: 'Ring fill',
      unit: 'percentunit',
      threshold: t('SpimstreamRingFilling'),
      exprs: [{ expr: `spimstream_ring_fill_ratio{${SEL}}`, legend: '{{instance}} {{camera}}' }],
    },
    {
      title: 'Z-block pool in use (storage back-pressure)',
      unit: 'percentunit',
      description:
        'Near 100 %: encoding or the disk cannot keep up; frames then wait in the ring and, once it is half full, are not stored (counted).',
      exprs: [{ expr: `spimstream_block_pool_used_ratio{${SEL}}`, legend: '{{instance}} {{camera}}' }],
    },
    {
      title: 'Disk free',
      unit: 'bytes',
      threshold: t('SpimstreamDiskLow'),
      exprs: [{ expr: 'spimstream_disk_free_bytes{job="spimstream", instance=~"$instance"}', legend: '{{instance}}' }],
    },
    {
      title: 'Local disk full in (forecast)',
      unit: 's',
      threshold: t('SpimstreamLocalDiskFullSoon'),
      description:
        "Seconds until free space reaches storage.min_free_bytes (storing stops) at the last minute's net inflow; no value (+Inf) while free space is not shrinking.",
      exprs: [{ expr: 'spimstream_local_disk_full_in_seconds{job="spimstream", instance=~"$instance"}', legend: '{{instance}}' }],
    },
    {
      title: 'Offload: verified at the destination',
      unit: 'Bps',
      exprs: [
        {
          expr: `sum by (instance, camera) (rate(spimstream_offload_bytes_total{${SEL}, result="verified"}[$__rate_interval]))`,
          legend: '{{instance}} {{camera}}',
        },
      ],
    },
    {
      title: 'Offload: waiting locally, and the oldest file',
      unit: 'bytes',
      threshold: t('SpimstreamOffloadStalled'),
      description:
        'Bytes written and not yet verified at offload.destination; the lag series (seconds) is the age of the oldest such file.',
      exprs: [
        { expr: `spimstream_offload_queue_bytes{${SEL}}`, legend: '{{instance}} {{camera}} bytes' },
        { expr: `spimstream_offload_lag_seconds{${SEL}}`, legend: '{{instance}} {{camera}} lag s' },
      ],
    },
    {
      title: 'Pyramid: worker time per level (cores)',
      unit: 'none',
      description:
        'storage.levels on: the reduce jobs building each lower level (the first 2x2 step rides in the frame tasks). Failed level blocks stay fill value and are counted.',
      exprs: [
        {
          expr: `sum by (instance, level) (rate(spimstream_pyramid_seconds_total{${SEL}}[$__rate_interval]))`,
          legend: '{{instance}} level {{level}}',
        },
        {
          expr: `sum by (instance, level) (increase(spimstream_pyramid_failures_total{${SEL}}[5m]))`,
          legend: '{{instance}} level {{level}} failed (5 min)',
        },
      ],
    },
    {
      title: 'CPU by thread kind (cores)',
      unit: 'none',
      description:
        'main = HTTP, WebSocket, bookkeeping; ingest = the ring reader (one thread: near 1 core it caps the rate); worker = QC, storing, encoding, pyramid; preview; other = file writes, GC. Offload (rclone) is a separate process.',
      exprs: [
        {
          expr: `sum by (instance, kind) (rate(spimstream_thread_cpu_seconds_total{${SEL}}[$__rate_interval]))`,
          legend: '{{instance}} {{kind}}',
        },
      ],
    },
    {
      title: 'Preview clients',
      unit: 'none',
      exprs: [{ expr: 'spimstream_preview_clients{job="spimstream", instance=~"$instance"}', legend: '{{instance}}' }],
    },
    {
      title: 'Alerts raised by the sidecar',
      unit: 'none',
      exprs: [{ expr: `spimstream_alert_active{${SEL}}`, legend: '{{instance}} {{alert}}' }],
    },
  ];
}

export function dashboard(cfg: Config): Record<string, unknown> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, filled in by Grafana
  const ds = { type: 'prometheus', uid: '${datasource}' };
  const list = panels(cfg).map((p, i) => ({
    id: i + 1,
    type: p.type ?? 'timeseries',
    title: p.title,
    description: p.description ?? '',
    datasource: ds,
    gridPos: { x: (i % 3) * 8, y: Math.floor(i / 3) * 8, w: 8, h: 8 },
    fieldConfig: {
      defaults: {
        unit: p.unit,
        thresholds: {
          mode: 'absolute',
          steps: p.threshold
            ? p.threshold.op === '>'
              ? [
                  { color: 'green', value: null },
                  { color: 'red', value: p.threshold.value },
                ]
              : [
                  { color: 'red', value: null },
                  { color: 'green', value: p.threshold.value },
                ]
            : [{ color: 'green', value: null }],
        },
        custom: p.threshold ? { thresholdsStyle: { mode: 'line' } } : {},
      },
      overrides: [],
    },
    options: {},
    targets: p.exprs.map((e, k) => ({ refId: String.fromCharCode(65 + k), datasource: ds, expr: e.expr, legendFormat: e.legend })),
  }));
  return {
    uid: 'spimstream-overview',
    title: 'spimstream — microscopes overview',
    tags: ['spimstream', 'microscopy'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Prometheus' },
        {
          name: 'instance',
          type: 'query',
          datasource: ds,
          query: 'label_values(up{job="spimstream"}, instance)',
          refresh: 2,
          includeAll: true,
          multi: true,
          allValue: '.*',
          current: { text: 'All', value: '$__all' },
        },
        {
          name: 'camera',
          type: 'query',
          datasource: ds,
          query: 'label_values(spimstream_frames_received_total{job="spimstream", instance=~"$instance"}, camera)',
          refresh: 2,
          includeAll: true,
          multi: true,
          allValue: '.*',
          current: { text: 'All', value: '$__all' },
        },
      ],
    },
    panels: list,
  };
}

/** Every PromQL expression of the dashboard (targets and variable queries' label_values selectors). */
export function dashboardExpressions(d: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const p of d.panels as { targets: { expr: string }[] }[]) for (const t of p.targets) out.push(t.expr);
  return out;
}
