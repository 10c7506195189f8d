/**
 * Prometheus exposition (prom-client), fed only by the event bus. Per-stream series carry
 * camera/channel/view labels; nothing is labelled per frame, z or t (bounded cardinality).
 */
import { threadCpuSeconds } from '../ingest/thread-cpu.js';
import { GLOBAL_ALERTS, STREAM_ALERTS } from '../qc/alerts.js';
import client from 'prom-client';
import type { EventBus, StreamKey } from '../pipeline/events.js';
import type { StreamState } from '../qc/stream-qc.js';

const SL = ['camera', 'channel', 'view'] as const;

export interface MetricsSources {
  ringFillRatio(): number;
  diskFreeBytes(): number | null;
  /** Seconds until the output disk reaches storage.min_free_bytes at the last minute's net inflow (null: storage off). */
  diskFullInSeconds(): number | null;
  previewClients(): number;
  framePoolInUseRatio(): number;
  /** Longest pause between two ring polls of the ingest thread since the last scrape, ms. */
  ingestMaxPollGapMs(): number;
  blockPoolInUseRatio(): number;
  streams(): Iterable<StreamState>;
  focusMeasure(): string;
  /** Offload backlog (null when offload is off). */
  offloadBacklog(): { bytes: number; lagSeconds: number; urgent: boolean } | null;
}

export class Metrics {
  readonly registry: client.Registry;
  private readonly camera: string;

  constructor(bus: EventBus, camera: string, info: Record<string, string>, sources: MetricsSources) {
    this.camera = camera;
    const reg = new client.Registry();
    const defaults = new client.Registry();
    client.collectDefaultMetrics({ register: defaults });
    // Node's handle/request/resource counts are gauges named *_total, which promtool's lint rejects.
    for (const m of defaults.getMetricsAsArray()) {
      if (m.name.endsWith('_total') && (m as unknown as { constructor: { name: string } }).constructor.name === 'Gauge')
        defaults.removeSingleMetric(m.name);
    }
    const lbl = (s: StreamKey) => ({ camera: s.camera, channel: s.channel, view: s.view });
    const c = (name: string, help: string, labelNames: readonly string[]) =>
      new client.Counter({ name, help, labelNames, registers: [reg] });
    const g = (name: string, help: string, labelNames: readonly string[], collect?: client.GaugeConfiguration<string>['collect']) =>
      new client.Gauge({ name, help, labelNames, registers: [reg], ...(collect ? { collect } : {}) });
    const received = c('spimstream_frames_received_total', 'Frames read whole from the ring.', SL);
    const dropped = c(
      'spimstream_frames_dropped_total',
      'Frames lost before processing: overrun = overwritten in the ring before spimstream read them; gap = missing from the camera frame counter; torn = the slot was overwritten, or the ring file truncated, while it was copied (discarded, never stored).',
      ['camera', 'reason'],
    );
    const unstored = c(
      'spimstream_frames_unstored_total',
      'Frames received (QC and preview ran) but not written to the store, by reason: block-pool-full (encoding behind), write-backlog (disk behind), index (outside the declared geometry), late (a revisited plane whose chunk was already sealed), encode-failed, or the storage error code (ENOSPC, EDISKGUARD, EROFS, ...).',
      ['camera', 'reason'],
    );
    const qcSampled = c(
      'spimstream_qc_sampled_total',
      'Frames received whose focus and drift were skipped because the workers were behind (storage comes first); intensity and saturation are still measured on every frame (from every 4th row of it).',
      SL,
    );
    const previewsThrottled = c(
      'spimstream_previews_throttled_total',
      "Previews the viewers' rate asked for that were not rendered because the workers were behind: previews yield first (1 per second per stream then), QC next, storage last.",
      SL,
    );
    bus.on('preview-throttled', (e) => previewsThrottled.inc(lbl(e.stream)));
    const bytesIn = c('spimstream_bytes_received_total', 'Raw pixel bytes read from the ring.', ['camera']);
    const bytesOut = c('spimstream_bytes_written_total', 'Compressed bytes written to the store (shards renamed into place).', ['camera']);
    const pyrSeconds = c(
      'spimstream_pyramid_seconds_total',
      'Worker seconds spent building each pyramid level from the level above (the reduce jobs; the first 2 x 2 step rides in the frame tasks).',
      ['camera', 'level'],
    );
    const pyrFailed = c(
      'spimstream_pyramid_failures_total',
      'Pyramid z-blocks that could not be built or encoded (that part of the level stays fill value; level 0 is unaffected), by level.',
      ['camera', 'level'],
    );
    const ratio = g('spimstream_compression_ratio', 'Raw bytes / compressed bytes of the chunks stored so far in this acquisition.', [
      'camera',
    ]);
    const focus = g('spimstream_focus_score', 'Focus measure of the latest frame (higher = sharper; compare within a measure only).', [
      ...SL,
      'measure',
    ]);
    const sat = g('spimstream_saturated_pixels_ratio', 'Fraction of pixels at or above the saturation level in the latest frame.', SL);
    const under = g('spimstream_underexposed_pixels_ratio', 'Fraction of pixels at or below the camera offset in the latest frame.', SL);
    const driftPx = g('spimstream_drift_pixels', 'Lateral shift of the latest frame against its reference, pixels.', [...SL, 'axis']);
    const driftM = g('spimstream_drift_meters', 'Lateral shift of the latest frame against its reference, metres (pixels x pixel size).', [
      ...SL,
      'axis',
    ]);
    const driftConf = g(
      'spimstream_drift_confidence',
      'Peak-to-sidelobe ratio of the drift estimate (low = unreliable, shift not reported).',
      SL,
    );
    const snr = g('spimstream_snr', 'Simple signal-to-noise estimate of the latest frame.', SL);
    const meanI = g('spimstream_intensity_mean', 'Mean pixel value of the latest frame, ADU.', SL);
    g('spimstream_frame_rate_hertz', 'Frame rate of the stream from the ring timestamps (last 100 frames).', SL, function collect() {
      for (const s of sources.streams()) this.set(lbl(s.stream), s.timing.get().fps);
    });
    g(
      'spimstream_frame_interval_jitter_seconds',
      'Standard deviation of the interval between frames (ring timestamps, last 100 frames).',
      SL,
      function collect() {
        for (const s of sources.streams()) this.set(lbl(s.stream), s.timing.get().jitterSeconds);
      },
    );
    g(
      'spimstream_intensity_relative',
      'Mean signal above offset relative to the first timepoint, same plane (photobleaching trend).',
      SL,
      function collect() {
        for (const s of sources.streams()) this.set(lbl(s.stream), s.intensityRelative);
      },
    );
    const stackFocus = g(
      'spimstream_stack_focus_score',
      'Mean focus measure over the last completed z-stack (the focus alerts use this).',
      [...SL, 'measure'],
    );
    const bestZ = g('spimstream_best_focus_plane', 'Plane index of best focus in the last completed stack (axial drift proxy).', SL);
    const stackSat = g(
      'spimstream_stack_saturated_pixels_ratio',
      'Largest saturated fraction over the planes of the last completed stack.',
      SL,
    );
    const proc = new client.Histogram({
      name: 'spimstream_frame_processing_seconds',
      help: 'Worker time spent on QC of one frame.',
      labelNames: ['camera'],
      registers: [reg],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
    });
    const latency = new client.Histogram({
      name: 'spimstream_frame_latency_seconds',
      help: 'Time from the frame timestamp in the ring to its QC result.',
      labelNames: ['camera'],
      registers: [reg],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    const storeLatency = new client.Histogram({
      name: 'spimstream_store_latency_seconds',
      help: 'Time from the first frame of a z-block to its chunks being encoded.',
      labelNames: ['camera'],
      registers: [reg],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    });
    const readLag = new client.Histogram({
      name: 'spimstream_ingest_read_lag_seconds',
      help: "Time from the frame's timestamp in the ring (the producer's write) to the ingest thread's copy of it: near the ring's depth in time, frames are about to be overrun.",
      labelNames: ['camera'],
      registers: [reg],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    g(
      'spimstream_ingest_poll_gap_max_seconds',
      'Longest pause between two ring polls of the ingest thread since the previous scrape (a stall longer than the ring holds overruns it).',
      ['camera'],
      function collect() {
        this.set({ camera }, sources.ingestMaxPollGapMs() / 1000);
      },
    );
    new client.Counter({
      name: 'spimstream_thread_cpu_seconds_total',
      registers: [reg],
      labelNames: ['camera', 'kind'],
      help: "CPU seconds (user + system) of the sidecar's threads by kind: main (HTTP, WebSocket, bookkeeping), ingest (the ring reader), worker (QC, storing into z-blocks, encoding, pyramid), preview, other (file writes in libuv's pool, GC and V8 helpers). Linux only.",
      collect() {
        this.reset();
        for (const [kind, secs] of threadCpuSeconds()) this.inc({ camera, kind }, secs);
      },
    });
    g(
      'spimstream_ring_fill_ratio',
      'Fraction of the ring holding frames not yet read (1 = about to overrun).',
      ['camera'],
      function collect() {
        this.set({ camera }, sources.ringFillRatio());
      },
    );
    g('spimstream_frame_pool_used_ratio', 'Fraction of the frame buffer pool in use.', ['camera'], function collect() {
      this.set({ camera }, sources.framePoolInUseRatio());
    });
    g(
      'spimstream_block_pool_used_ratio',
      'Fraction of the z-block pool (pipeline.block_pool_mib) in use: near 1, encoding or the disk is behind and storage is about to be shed.',
      ['camera'],
      function collect() {
        this.set({ camera }, sources.blockPoolInUseRatio());
      },
    );
    g('spimstream_disk_free_bytes', 'Free bytes on the file system of the output directory.', [], function collect() {
      const v = sources.diskFreeBytes();
      if (v !== null) this.set(v);
    });
    g(
      'spimstream_local_disk_full_in_seconds',
      'Forecast: seconds until free space on the output disk falls to storage.min_free_bytes (where storing stops) at the net inflow of the last minute (written minus freed by offload.delete_local); +Inf while free space is not shrinking.',
      [],
      function collect() {
        const v = sources.diskFullInSeconds();
        if (v !== null) this.set(v);
      },
    );
    g('spimstream_preview_clients', 'Connected preview (WebSocket) clients.', [], function collect() {
      this.set(sources.previewClients());
    });
    const storageOk = g(
      'spimstream_storage_ok',
      '1 while frames are being stored, 0 after a storage error or when the disk guard stopped storing.',
      ['camera'],
    );
    const alertG = g(
      'spimstream_alert_active',
      'Alerts computed by spimstream from the configured thresholds (1 = firing). Every alert has a series from the start: saturation, drift and focus_lost per stream (camera, channel, view), the others per camera (channel and view empty).',
      [...SL, 'alert'],
    );
    const focusRel = g(
      'spimstream_focus_relative',
      'Best measured plane focus of the last stack over the baseline of the same planes (1 = as sharp as usual; focus_lost fires below 1 - qc.thresholds.focus_drop_ratio).',
      SL,
    );
    const offBytes = c(
      'spimstream_offload_bytes_total',
      'Bytes offloaded to offload.destination: result verified (copied and checked there) or failed (a batch that will be retried).',
      ['camera', 'result'],
    );
    const offFiles = c(
      'spimstream_offload_files_total',
      'Files offloaded: result verified or failed (retried with backoff; the local copy is kept).',
      ['camera', 'result'],
    );
    const offFail = c(
      'spimstream_offload_failures_total',
      'Failed offload batches by reason: unreachable, refused (credentials), destination-full, verify, other.',
      ['camera', 'reason'],
    );
    g(
      'spimstream_offload_queue_bytes',
      'Bytes written locally and not yet verified at the offload destination.',
      ['camera'],
      function collect() {
        const b = sources.offloadBacklog();
        if (b) this.set({ camera }, b.bytes);
      },
    );
    g(
      'spimstream_offload_lag_seconds',
      'Age of the oldest file not yet verified at the offload destination (0 = caught up).',
      ['camera'],
      function collect() {
        const b = sources.offloadBacklog();
        if (b) this.set({ camera }, b.lagSeconds);
      },
    );
    g(
      'spimstream_offload_urgent',
      "Offload runs at storing's priority (1): the free space above storage.min_free_bytes fell below the offload backlog (with delete_local); 0: rclone yields to storing (nice 19).",
      ['camera'],
      function collect() {
        const b = sources.offloadBacklog();
        if (b) this.set({ camera }, b.urgent ? 1 : 0);
      },
    );
    const onComplete = g(
      'spimstream_on_complete_exit_code',
      'Exit status of the last offload.on_complete command (-1: could not start or was killed).',
      ['camera'],
    );
    bus.on('offload-files', (e) => {
      offBytes.inc({ camera, result: e.result }, e.bytes);
      offFiles.inc({ camera, result: e.result }, e.files);
    });
    bus.on('offload-failure', (e) => offFail.inc({ camera, reason: e.reason }));
    bus.on('on-complete', (e) => onComplete.set({ camera }, e.code ?? -1));
    const infoG = g('spimstream_build_info', 'Version and codec in use (value is always 1).', Object.keys(info));
    infoG.set(info, 1);
    const acqG = g('spimstream_acquisition_active', '1 while an acquisition is being received.', ['camera']);

    for (const reason of ['overrun', 'gap', 'torn']) dropped.inc({ camera, reason }, 0);
    for (const reason of ['block-pool-full', 'write-backlog']) unstored.inc({ camera, reason }, 0);
    bytesIn.inc({ camera }, 0);
    bytesOut.inc({ camera }, 0);
    storageOk.set({ camera }, 1);
    acqG.set({ camera }, 0);
    const noStream = { camera, channel: '', view: '' };
    for (const alert of GLOBAL_ALERTS) alertG.set({ ...noStream, alert }, 0);
    if (sources.offloadBacklog() !== null) {
      alertG.set({ ...noStream, alert: 'offload_stalled' }, 0); // offload on: its alert exists from the start
      for (const result of ['verified', 'failed']) {
        offBytes.inc({ camera, result }, 0);
        offFiles.inc({ camera, result }, 0);
      }
    }
    const knownStreams = new Set<string>();

    let raw = 0;
    let stored = 0;
    bus.on('frame-received', (e) => {
      const k = `${e.stream.channel}/${e.stream.view}`;
      if (!knownStreams.has(k)) {
        // a stream's alerts exist, at 0, from its first frame
        knownStreams.add(k);
        for (const alert of STREAM_ALERTS) alertG.set({ ...lbl(e.stream), alert }, 0);
      }
      received.inc(lbl(e.stream));
      bytesIn.inc({ camera }, e.bytes);
      // A producer clock far off ours would make this meaningless: only plausible lags are observed.
      if (e.readLagMs >= 0 && e.readLagMs < 3_600_000) readLag.observe({ camera }, e.readLagMs / 1000);
    });
    bus.on('frames-lost', (e) => dropped.inc({ camera, reason: e.reason }, e.count));
    bus.on('frames-unstored', (e) => unstored.inc({ camera, reason: e.reason }, e.count));
    bus.on('shard-written', (e) => bytesOut.inc({ camera }, e.bytes));
    bus.on('pyramid-block', (e) => {
      // A level's failure series exists (at 0) from its first block, so a rate or alert has data.
      pyrFailed.inc({ camera, level: String(e.level) }, e.ok ? 0 : 1);
      if (e.ok) pyrSeconds.inc({ camera, level: String(e.level) }, e.seconds);
    });
    bus.on('chunk-stored', (e) => {
      raw += e.rawBytes;
      stored += e.storedBytes;
      if (stored > 0) ratio.set({ camera }, raw / stored);
      storeLatency.observe({ camera }, e.latencyMs / 1000);
    });
    bus.on('storage-error', () => storageOk.set({ camera }, 0));
    bus.on('storage-resumed', () => storageOk.set({ camera }, 1));
    bus.on('acquisition-started', (e) => {
      raw = 0;
      stored = 0;
      acqG.set({ camera }, 1);
      storageOk.set({ camera }, e.storePath ? 1 : 0);
    });
    bus.on('acquisition-finished', () => acqG.set({ camera }, 0));
    bus.on('stack-qc', (e) => {
      if (e.qc.focusPlanes === e.qc.planes) {
        // a sampled stack's focus is not comparable
        stackFocus.set({ ...lbl(e.stream), measure: sources.focusMeasure() }, e.qc.meanFocus);
        bestZ.set(lbl(e.stream), e.qc.bestFocusZ);
      }
      stackSat.set(lbl(e.stream), e.qc.maxSaturatedRatio);
      if (e.qc.focusRelative !== null) focusRel.set(lbl(e.stream), e.qc.focusRelative);
    });
    bus.on('alert', (e) => alertG.set({ ...(e.stream ? lbl(e.stream) : noStream), alert: e.name }, e.active ? 1 : 0));
    bus.on('frame-qc', (e) => {
      const l = lbl(e.stream);
      const q = e.qc;
      if (q.sampled) qcSampled.inc(l);
      for (const [m, v] of Object.entries(q.focus)) focus.set({ ...l, measure: m }, v);
      sat.set(l, q.saturatedRatio);
      under.set(l, q.underexposedRatio);
      meanI.set(l, q.mean);
      snr.set(l, q.snr);
      if (q.drift) {
        driftConf.set(l, q.drift.confidence);
        if (q.drift.excluded) {
          // Not measured (a saturated or intensity-stepped plane): no value rather than the last one.
          for (const axis of ['x', 'y']) {
            driftPx.set({ ...l, axis }, NaN);
            driftM.set({ ...l, axis }, NaN);
          }
        } else if (q.drift.valid) {
          driftPx.set({ ...l, axis: 'x' }, q.drift.dx);
          driftPx.set({ ...l, axis: 'y' }, q.drift.dy);
          driftM.set({ ...l, axis: 'x' }, q.drift.dx * this.pixelSizeUm * 1e-6);
          driftM.set({ ...l, axis: 'y' }, q.drift.dy * this.pixelSizeUm * 1e-6);
        }
      }
      proc.observe({ camera }, e.processingSeconds);
      latency.observe({ camera }, Math.max(0, e.latencyMs) / 1000);
    });
    this.registry = client.Registry.merge([reg, defaults]);
  }

  pixelSizeUm = 1;

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
