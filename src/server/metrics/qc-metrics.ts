/**
 * QC metrics: the latest frame's focus, exposure, drift and signal per stream, the last stack's
 * summary, worker time and latency of QC, frames whose QC was sampled, and the alerts.
 */
import { GLOBAL_ALERTS, STREAM_ALERTS } from '../../qc/alerts.js';
import { counter, gauge, histogram, type MetricsContext, register, SL, streamLabels } from './metric-kit.js';
import { streamId } from '../../pipeline/events.js';
import { QC_SAMPLE_BACKLOG_S } from '../../pipeline/qc-dispatch.js';
import { focusPlottable } from '../../qc/qc-types.js';

export function qcMetrics({ bus, camera, sources, registry }: MetricsContext): void {
  const m = register(registry, {
    sampled: counter(
      'spimstream_qc_sampled_total',
      `Frames received whose focus and drift were skipped because the workers were behind (storage comes first), by reason: workers-behind (the frame tasks in flight stand for more than ${QC_SAMPLE_BACKLOG_S} s of the workers' time), encodes-behind (encoding or the disk is behind: a block sealed before the one filling now is still waiting for its encode or write when that one is half full, with the z-block pool over half used); intensity and saturation are still measured on every frame (from every 4th row of it).`,
      [...SL, 'reason'],
    ),
    focus: gauge('spimstream_focus_score', 'Focus measure of the latest frame (higher = sharper; compare within a measure only).', [
      ...SL,
      'measure',
    ]),
    sat: gauge('spimstream_saturated_pixels_ratio', 'Fraction of pixels at or above the saturation level in the latest frame.', SL),
    under: gauge('spimstream_underexposed_pixels_ratio', 'Fraction of pixels at or below the camera offset in the latest frame.', SL),
    driftPx: gauge('spimstream_drift_pixels', 'Lateral shift of the latest frame against its reference, pixels.', [...SL, 'axis']),
    driftM: gauge('spimstream_drift_meters', 'Lateral shift of the latest frame against its reference, metres (pixels x pixel size).', [
      ...SL,
      'axis',
    ]),
    driftConf: gauge(
      'spimstream_drift_confidence',
      'Peak-to-sidelobe ratio of the drift estimate (low = unreliable, shift not reported).',
      SL,
    ),
    snr: gauge('spimstream_snr', 'Simple signal-to-noise estimate of the latest frame.', SL),
    mean: gauge('spimstream_intensity_mean', 'Mean pixel value of the latest frame, ADU.', SL),
    relative: gauge(
      'spimstream_intensity_relative',
      'Mean signal above offset relative to the first timepoint, same plane (photobleaching trend).',
      SL,
      (g) => {
        for (const s of sources.streams()) g.set(streamLabels(s.stream), s.intensityRelative);
      },
    ),
    stackFocus: gauge(
      'spimstream_stack_focus_score',
      'Mean focus measure over the last completed z-stack with every plane measured and not excluded (the focus alert uses spimstream_focus_relative).',
      [...SL, 'measure'],
    ),
    bestZ: gauge('spimstream_best_focus_plane', 'Plane index of best focus in the last completed stack (axial drift proxy).', SL),
    stackSat: gauge(
      'spimstream_stack_saturated_pixels_ratio',
      'Largest saturated fraction over the planes of the last completed stack.',
      SL,
    ),
    processing: histogram(
      'spimstream_frame_processing_seconds',
      'Worker time spent on QC of one frame.',
      ['camera'],
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
    ),
    latency: histogram(
      'spimstream_frame_latency_seconds',
      'Time from the frame timestamp in the ring to its QC result.',
      ['camera'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ),
    alert: gauge(
      'spimstream_alert_active',
      'Alerts computed by spimstream from the configured thresholds (1 = firing). Every alert has a series from the start: saturation, drift and focus_lost per stream (camera, channel, view), the others per camera (channel and view empty).',
      [...SL, 'alert'],
    ),
    focusRel: gauge(
      'spimstream_focus_relative',
      'Best measured plane focus of the last stack over the baseline of the same planes (1 = as sharp as usual; focus_lost fires below 1 - qc.thresholds.focus_drop_ratio).',
      SL,
    ),
  });
  const noStream = { camera, channel: '', view: '' };
  for (const alert of GLOBAL_ALERTS) m.alert.set({ ...noStream, alert }, 0);
  // Offload on: its alert exists from the start.
  if (sources.offloadBacklog() !== null) m.alert.set({ ...noStream, alert: 'offload_stalled' }, 0);
  const known = new Set<string>();
  bus.on('frame-received', (e) => {
    const k = streamId(e.stream);
    if (known.has(k)) return;
    known.add(k); // a stream's alerts exist, at 0, from its first frame
    for (const alert of STREAM_ALERTS) m.alert.set({ ...streamLabels(e.stream), alert }, 0);
  });
  bus.on('alert', (e) => m.alert.set({ ...(e.stream ? streamLabels(e.stream) : noStream), alert: e.name }, e.active ? 1 : 0));
  bus.on('stack-qc', (e) => {
    const l = streamLabels(e.stream);
    if (focusPlottable(e.qc)) {
      // the dashboard plots it: the page's rule (a sampled or excluded stack's focus is not comparable)
      m.stackFocus.set({ ...l, measure: sources.focusMeasure() }, e.qc.meanFocus);
      m.bestZ.set(l, e.qc.bestFocusZ);
    }
    m.stackSat.set(l, e.qc.maxSaturatedRatio);
    if (e.qc.focusRelative !== null) m.focusRel.set(l, e.qc.focusRelative);
  });
  bus.on('frame-qc', (e) => {
    const l = streamLabels(e.stream);
    const q = e.qc;
    if (e.sampledReason) m.sampled.inc({ ...l, reason: e.sampledReason });
    for (const [measure, v] of Object.entries(q.focus)) m.focus.set({ ...l, measure }, v);
    m.sat.set(l, q.saturatedRatio);
    m.under.set(l, q.underexposedRatio);
    m.mean.set(l, q.mean);
    m.snr.set(l, q.snr);
    if (q.drift) {
      m.driftConf.set(l, q.drift.confidence);
      if (q.drift.excluded) {
        // Not measured (a saturated or intensity-stepped plane): no value rather than the last one.
        for (const axis of ['x', 'y']) {
          m.driftPx.set({ ...l, axis }, NaN);
          m.driftM.set({ ...l, axis }, NaN);
        }
      } else if (q.drift.valid) {
        const metres = sources.pixelSizeUm() * 1e-6;
        m.driftPx.set({ ...l, axis: 'x' }, q.drift.dx);
        m.driftPx.set({ ...l, axis: 'y' }, q.drift.dy);
        m.driftM.set({ ...l, axis: 'x' }, q.drift.dx * metres);
        m.driftM.set({ ...l, axis: 'y' }, q.drift.dy * metres);
      }
    }
    m.processing.observe({ camera }, e.processingSeconds);
    m.latency.observe({ camera }, Math.max(0, e.latencyMs) / 1000);
  });
}
