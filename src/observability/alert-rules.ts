/**
 * The alert catalogue, generated from the configured thresholds into both a Prometheus rules file
 * (for Alertmanager) and Grafana-managed alert provisioning, so the page, Prometheus and Grafana
 * alert on the same conditions. Each rule is `value op threshold` over a PromQL value expression.
 */
import type { Config } from '../config/config.js';
import { DROP_WINDOW_SECONDS, FOCUS_CLEAR_STACKS, focusLevels } from '../qc/alerts.js';
import { runbookUrl } from './runbook.js';

export interface AlertRule {
  name: string;
  /** PromQL that yields the value compared with the threshold. */
  value: string;
  op: '>' | '<';
  threshold: number;
  for: string;
  severity: 'critical' | 'warning';
  summary: string;
  description: string;
  /** The live value against the threshold, as a Prometheus template (default: $value vs the threshold). */
  now?: string;
}

/** A gauge of the alert's own stream or scope, read live into the notification (Prometheus' `query`). */
const live = (metric: string, labels: string[], fmt: string): string =>
  `{{ with printf "${metric}{job='spimstream',${labels.map((l) => `${l}='%s'`).join(',')}}" ${labels.map((l) => `$labels.${l}`).join(' ')} | query }}{{ . | first | value | ${fmt} }}{{ else }}unknown{{ end }}`;

const S = '{job="spimstream"}';

export function alertRules(cfg: Config): AlertRule[] {
  const th = cfg.qc.thresholds;
  const stream = 'instance, camera, channel, view';
  return [
    {
      name: 'SpimstreamDown',
      value: `up${S}`,
      op: '<',
      threshold: 1,
      for: '1m',
      severity: 'critical',
      summary: 'spimstream sidecar {{ $labels.instance }} is down',
      description: 'Prometheus cannot scrape the sidecar: no QC, no preview, and frames are not being stored.',
      now: '',
    },
    {
      name: 'SpimstreamFramesDropped',
      value: `sum by (instance, camera, reason) (increase(spimstream_frames_dropped_total${S}[${DROP_WINDOW_SECONDS}s]))`,
      op: '>',
      threshold: 0,
      for: '0s',
      severity: 'critical',
      summary: '{{ $labels.camera }} on {{ $labels.instance }} lost {{ $value | printf "%.0f" }} frames ({{ $labels.reason }})',
      description: 'overrun = spimstream fell behind the ring; gap = the camera counter skipped frames before the ring.',
      now: '', // the summary carries the count; the value is not a measure
    },
    {
      name: 'SpimstreamFramesUnstored',
      value: `sum by (instance, camera, reason) (increase(spimstream_frames_unstored_total${S}[${DROP_WINDOW_SECONDS}s]))`,
      op: '>',
      threshold: 0,
      for: '0s',
      severity: 'critical',
      summary:
        '{{ $labels.camera }} on {{ $labels.instance }}: {{ $value | printf "%.0f" }} frames not written to disk ({{ $labels.reason }})',
      description:
        'Frames were received (QC and preview ran) but not stored. block-pool-full = encoding cannot keep up (CPU); write-backlog = the disk cannot keep up; ENOSPC/EDISKGUARD/EROFS/... = the storage error (see the sidecar log).',
      now: '', // the summary carries the count; the value is not a measure
    },
    {
      name: 'SpimstreamStorageFailed',
      value: `spimstream_storage_ok${S}`,
      op: '<',
      threshold: 1,
      for: '0s',
      severity: 'critical',
      summary: 'storage stopped on {{ $labels.instance }} ({{ $labels.camera }})',
      description: 'See the sidecar log for the storage error.',
      now: '', // the summary carries the count; the value is not a measure
    },
    {
      // Decided by the sidecar, which keeps a baseline per plane (Prometheus sees one series per
      // stream, and focus varies along z): the rule and the page cannot disagree.
      name: 'SpimstreamFocusLost',
      value: `max by (${stream}) (spimstream_alert_active{job="spimstream", alert="focus_lost"})`,
      op: '>',
      threshold: 0,
      for: '0s',
      severity: 'warning',
      summary: 'focus of {{ $labels.camera }} {{ $labels.channel }}/{{ $labels.view }} is lost',
      now: `Best plane now at ${live('spimstream_focus_relative', ['instance', 'camera', 'channel', 'view'], 'humanizePercentage')} of the usual focus; fires below ${Math.round(focusLevels(th.focus_drop_ratio).low * 100)}%.`,
      description: `The best plane of the last z-stack is below ${Math.round(focusLevels(th.focus_drop_ratio).low * 100)}% of the same planes' baseline; clears at ${Math.round(focusLevels(th.focus_drop_ratio).clear * 100)}% for ${FOCUS_CLEAR_STACKS} stacks.`,
    },
    {
      name: 'SpimstreamSaturation',
      value: `spimstream_stack_saturated_pixels_ratio${S}`,
      op: '>',
      threshold: th.saturated_ratio,
      for: '1m',
      severity: 'warning',
      summary: '{{ $labels.camera }}/{{ $labels.channel }}: {{ $value | humanizePercentage }} of pixels saturated',
      description: 'Reduce laser power or exposure; saturated pixels are lost information.',
      now: `Now {{ $value | humanizePercentage }} of pixels; fires above ${+(th.saturated_ratio * 100).toPrecision(3)}%.`,
    },
    {
      name: 'SpimstreamDrift',
      value: `1e6 * sqrt(sum by (${stream}) (spimstream_drift_meters${S} ^ 2))`,
      op: '>',
      threshold: th.drift_um,
      for: '2m',
      severity: 'warning',
      summary: '{{ $labels.camera }}/{{ $labels.channel }} drifted {{ $value | printf "%.2f" }} µm',
      description: 'Lateral drift against the reference timepoint exceeds the threshold.',
      now: `Now {{ $value | printf "%.2f" }} µm; fires above ${th.drift_um} µm.`,
    },
    {
      name: 'SpimstreamRingFilling',
      value: `spimstream_ring_fill_ratio${S}`,
      op: '>',
      threshold: th.ring_fill_ratio,
      for: '30s',
      severity: 'warning',
      summary: 'ring of {{ $labels.camera }} on {{ $labels.instance }} is {{ $value | humanizePercentage }} full',
      description: 'spimstream is falling behind the camera; frames will be lost when the ring overruns.',
      now: `Now {{ $value | humanizePercentage }} full; fires above ${Math.round(th.ring_fill_ratio * 100)}%.`,
    },
    {
      // Decided by the sidecar (nothing verified for offload.stall_seconds while files wait).
      name: 'SpimstreamOffloadStalled',
      value: `max by (instance, camera) (spimstream_alert_active{job="spimstream", alert="offload_stalled"})`,
      op: '>',
      threshold: 0,
      for: '0s',
      severity: 'critical',
      summary: 'offload from {{ $labels.instance }} ({{ $labels.camera }}) is stalled',
      now: `Oldest file waiting ${live('spimstream_offload_lag_seconds', ['instance', 'camera'], 'humanizeDuration')}; fires after offload.stall_seconds without a verified file.`,
      description:
        'Nothing was verified at offload.destination for offload.stall_seconds while files wait (see spimstream_offload_failures_total for why); the local disk fills meanwhile (spimstream_offload_queue_bytes).',
    },
    {
      name: 'SpimstreamHandoffFailed',
      value: `sum by (instance, camera) (increase(spimstream_handoff_failures_total${S}[1h]))`,
      op: '>',
      threshold: 0,
      for: '0s',
      severity: 'warning',
      summary: 'the hand-off to processing failed on {{ $labels.instance }} ({{ $labels.camera }})',
      description:
        'offload.on_complete (the workflow or job that processes the offloaded store) exited non-zero, could not start or timed out in the last hour; spimstream_on_complete_exit_code has its status. The data is offloaded and verified; only processing is missing.',
      now: '', // the count is the measure; the log has the command's output
    },
    {
      name: 'SpimstreamDiskLow',
      value: `spimstream_disk_free_bytes${S}`,
      op: '<',
      threshold: th.disk_free_bytes,
      for: '5m',
      severity: 'warning',
      summary: 'only {{ $value | humanize1024 }}B free for the store on {{ $labels.instance }}',
      description: 'Free space on the output disk is below the margin; storing stops before the disk is full.',
      now: `Now {{ $value | humanize1024 }}B free; fires below ${(th.disk_free_bytes / 1e9).toPrecision(3)} GB.`,
    },
    {
      name: 'SpimstreamLocalDiskFullSoon',
      value: `spimstream_local_disk_full_in_seconds${S}`,
      op: '<',
      threshold: th.disk_full_in_s,
      for: '2m',
      severity: 'critical',
      summary: 'the output disk of {{ $labels.instance }} fills in {{ $value | humanizeDuration }}',
      description:
        "At the last minute's net inflow (written minus what offload deletes) free space reaches storage.min_free_bytes, where storing stops. Offload behind or stalled (spimstream_offload_queue_bytes), or no delete_local: make room, fix the destination, or change --out.",
      now: `Full in {{ $value | humanizeDuration }}; fires below ${Math.round(th.disk_full_in_s / 60)} min.`,
    },
  ];
}

export function prometheusRules(cfg: Config): Record<string, unknown> {
  return {
    groups: [
      {
        name: 'spimstream',
        rules: alertRules(cfg).map((r) => ({
          alert: r.name,
          expr: `${r.value} ${r.op} ${r.threshold}`,
          for: r.for,
          labels: { severity: r.severity },
          annotations: annotations(r, cfg),
        })),
      },
    ],
  };
}

/** summary, description with the live value against the threshold, and the runbook link. */
function annotations(r: AlertRule, cfg: Config): Record<string, string> {
  const now = r.now ?? `Now {{ $value | printf "%.3g" }}; fires ${r.op === '>' ? 'above' : 'below'} ${r.threshold}.`;
  return {
    summary: r.summary,
    description: now ? `${r.description} ${now}` : r.description,
    runbook_url: runbookUrl(r.name, cfg.alerting.runbook_url),
  };
}

export function grafanaAlertProvisioning(cfg: Config, datasourceUid: string): Record<string, unknown> {
  return {
    apiVersion: 1,
    groups: [
      {
        orgId: 1,
        name: 'spimstream',
        folder: 'spimstream',
        interval: '30s',
        rules: alertRules(cfg).map((r) => ({
          uid: `spimstream-${r.name.replace(/^Spimstream/, '').toLowerCase()}`,
          title: r.name,
          condition: 'C',
          data: [
            {
              refId: 'A',
              relativeTimeRange: { from: 600, to: 0 },
              datasourceUid,
              model: { refId: 'A', expr: r.value, instant: true, intervalMs: 1000, maxDataPoints: 43200 },
            },
            {
              refId: 'C',
              relativeTimeRange: { from: 600, to: 0 },
              datasourceUid: '__expr__',
              model: {
                refId: 'C',
                type: 'threshold',
                expression: 'A',
                conditions: [{ evaluator: { type: r.op === '>' ? 'gt' : 'lt', params: [r.threshold] } }],
              },
            },
          ],
          noDataState: r.name === 'SpimstreamDown' ? 'Alerting' : 'OK',
          execErrState: 'Error',
          for: r.for,
          labels: { severity: r.severity },
          annotations: annotations(r, cfg),
        })),
      },
    ],
  };
}
