/** Offload metrics: bytes and files verified or failed at the destination, why batches failed, the backlog, the hand-off (on_complete). */
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
    handoffRunning: gauge('spimstream_handoff_running', 'offload.on_complete commands (the hand-off) running now.', ['camera']),
    handoffFailures: counter(
      'spimstream_handoff_failures_total',
      'Hand-offs (offload.on_complete) that exited non-zero, could not start or were killed at on_complete_timeout_s.',
      ['camera'],
    ),
    handoffJobs: counter(
      'spimstream_handoff_jobs_total',
      "Slurm jobs the hand-off's output named (sbatch's 'Submitted batch job N', Snakemake's \"external jobid 'N'\").",
      ['camera'],
    ),
    handoffLastJob: gauge('spimstream_handoff_last_job_id', 'The last Slurm job id the hand-off named (0: none yet).', ['camera']),
    handoffSeconds: gauge(
      'spimstream_handoff_seconds',
      'Seconds from the end of the last handed-off acquisition to the end of its hand-off command (offload, then processing when on_complete waits for it, e.g. snakemake or sbatch --wait).',
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
  if (sources.offloadBacklog() !== null) {
    m.handoffRunning.set({ camera }, 0);
    m.handoffFailures.inc({ camera }, 0);
    m.handoffJobs.inc({ camera }, 0);
  }
  let running = 0;
  bus.on('on-complete-started', () => m.handoffRunning.set({ camera }, ++running));
  bus.on('on-complete', (e) => {
    m.onComplete.set({ camera }, e.code ?? -1);
    m.handoffRunning.set({ camera }, --running);
    if (e.code !== 0) m.handoffFailures.inc({ camera });
    if (e.jobs.length > 0) {
      m.handoffJobs.inc({ camera }, e.jobs.length);
      m.handoffLastJob.set({ camera }, Number(e.jobs[e.jobs.length - 1]));
    }
    if (e.seconds !== null) m.handoffSeconds.set({ camera }, e.seconds);
  });
}
