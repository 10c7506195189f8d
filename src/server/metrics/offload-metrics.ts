/** Offload metrics: bytes and files verified or failed at the destination, why batches failed, the backlog, on_complete. */
import { counter, gauge, type MetricsContext, register } from './metric-kit.js';

export function offloadMetrics({ bus, camera, sources, registry }: MetricsContext): void {
  const backlog = (set: (b: { bytes: number; lagSeconds: number; urgent: boolean }) => void): void => {
    const b = sources.offloadBacklog();
    if (b) set(b);
  };
  const m = register(registry, {
    bytes: counter(
      'spimstream_offload_bytes_total',
      'Bytes offloaded to offload.destination: result verified (copied and checked there) or failed (a batch that will be retried).',
      ['camera', 'result'],
    ),
    files: counter(
      'spimstream_offload_files_total',
      'Files offloaded: result verified or failed (retried with backoff; the local copy is kept).',
      ['camera', 'result'],
    ),
    failures: counter(
      'spimstream_offload_failures_total',
      'Failed offload batches by reason: unreachable, refused (credentials), destination-full, verify, other.',
      ['camera', 'reason'],
    ),
    queue: gauge(
      'spimstream_offload_queue_bytes',
      'Bytes written locally and not yet verified at the offload destination.',
      ['camera'],
      (g) => backlog((b) => g.set({ camera }, b.bytes)),
    ),
    lag: gauge(
      'spimstream_offload_lag_seconds',
      'Age of the oldest file not yet verified at the offload destination (0 = caught up).',
      ['camera'],
      (g) => backlog((b) => g.set({ camera }, b.lagSeconds)),
    ),
    urgent: gauge(
      'spimstream_offload_urgent',
      "Offload runs at storing's priority (1): the free space above storage.min_free_bytes fell below the offload backlog (with delete_local); 0: rclone yields to storing (nice 19).",
      ['camera'],
      (g) => backlog((b) => g.set({ camera }, b.urgent ? 1 : 0)),
    ),
    onComplete: gauge(
      'spimstream_on_complete_exit_code',
      'Exit status of the last offload.on_complete command (-1: could not start or was killed).',
      ['camera'],
    ),
  });
  if (sources.offloadBacklog() !== null) {
    for (const result of ['verified', 'failed']) {
      m.bytes.inc({ camera, result }, 0);
      m.files.inc({ camera, result }, 0);
    }
  }
  bus.on('offload-files', (e) => {
    m.bytes.inc({ camera, result: e.result }, e.bytes);
    m.files.inc({ camera, result: e.result }, e.files);
  });
  bus.on('offload-failure', (e) => m.failures.inc({ camera, reason: e.reason }));
  bus.on('on-complete', (e) => m.onComplete.set({ camera }, e.code ?? -1));
}
