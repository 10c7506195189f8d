/**
 * Ingest metrics: what came out of the ring, what was lost before processing and why, how far the
 * ring reader is behind the producer, and the frame rate of every stream.
 */
import { threadCpuSeconds } from '../../ingest/thread-cpu.js';
import { counter, gauge, histogram, type MetricsContext, register, SL, streamLabels } from './metric-kit.js';

export function ingestMetrics({ bus, camera, sources, registry }: MetricsContext): void {
  const m = register(registry, {
    received: counter('spimstream_frames_received_total', 'Frames read whole from the ring.', SL),
    dropped: counter(
      'spimstream_frames_dropped_total',
      'Frames lost before processing: overrun = overwritten in the ring before spimstream read them; gap = missing from the camera frame counter; torn = the slot was overwritten, or the ring file truncated, while it was copied (discarded, never stored).',
      ['camera', 'reason'],
    ),
    bytesIn: counter('spimstream_bytes_received_total', 'Raw pixel bytes read from the ring.', ['camera']),
    fps: gauge('spimstream_frame_rate_hertz', 'Frame rate of the stream from the ring timestamps (last 100 frames).', SL, (g) => {
      for (const s of sources.streams()) g.set(streamLabels(s.stream), s.timing.get().fps);
    }),
    jitter: gauge(
      'spimstream_frame_interval_jitter_seconds',
      'Standard deviation of the interval between frames (ring timestamps, last 100 frames).',
      SL,
      (g) => {
        for (const s of sources.streams()) g.set(streamLabels(s.stream), s.timing.get().jitterSeconds);
      },
    ),
    readLag: histogram(
      'spimstream_ingest_read_lag_seconds',
      "Time from the frame's timestamp in the ring (the producer's write) to the ingest thread's copy of it: near the ring's depth in time, frames are about to be overrun.",
      ['camera'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    ),
    pollGap: gauge(
      'spimstream_ingest_poll_gap_max_seconds',
      'Longest pause between two ring polls of the ingest thread since the previous scrape (a stall longer than the ring holds overruns it).',
      ['camera'],
      (g) => g.set({ camera }, sources.ingestMaxPollGapMs() / 1000),
    ),
    threadCpu: counter(
      'spimstream_thread_cpu_seconds_total',
      "CPU seconds (user + system) of the sidecar's threads by kind: main (HTTP, WebSocket, bookkeeping), ingest (the ring reader), worker (QC, storing into z-blocks, encoding, pyramid), preview, other (file writes in libuv's pool, GC and V8 helpers). Linux only.",
      ['camera', 'kind'],
      (c) => {
        c.reset();
        for (const [kind, secs] of threadCpuSeconds()) c.inc({ camera, kind }, secs);
      },
    ),
    ringFill: gauge(
      'spimstream_ring_fill_ratio',
      'Fraction of the ring holding frames not yet read (1 = about to overrun).',
      ['camera'],
      (g) => g.set({ camera }, sources.ringFillRatio()),
    ),
    framePool: gauge('spimstream_frame_pool_used_ratio', 'Fraction of the frame buffer pool in use.', ['camera'], (g) =>
      g.set({ camera }, sources.framePoolInUseRatio()),
    ),
  });
  for (const reason of ['overrun', 'gap', 'torn']) m.dropped.inc({ camera, reason }, 0);
  m.bytesIn.inc({ camera }, 0);
  bus.on('frame-received', (e) => {
    m.received.inc(streamLabels(e.stream));
    m.bytesIn.inc({ camera }, e.bytes);
    // A producer clock far off ours would make this meaningless: only plausible lags are observed.
    if (e.readLagMs >= 0 && e.readLagMs < 3_600_000) m.readLag.observe({ camera }, e.readLagMs / 1000);
  });
  bus.on('frames-lost', (e) => m.dropped.inc({ camera, reason: e.reason }, e.count));
}
