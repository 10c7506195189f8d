/**
 * What to do when an alert fires, per alert: the target of every rule's `runbook_url`, served by
 * each sidecar at /runbook (one section per alert, its id the anchor) so a notification links to
 * advice without a wiki. docs/guide.md's alert table says the same for readers of the docs.
 */
import { escapeHtml as esc } from '../html-escape.js';
export interface RunbookEntry {
  /** The anchor (and the sidecar's alert name where it has one). */
  id: string;
  rule: string;
  fires: string;
  todo: string;
}

export const RUNBOOK: RunbookEntry[] = [
  {
    id: 'down',
    rule: 'SpimstreamDown',
    fires: 'Prometheus cannot scrape the sidecar.',
    todo: 'Check that the spimstream service runs on the acquisition PC (systemctl status spimstream) and that the PC is reachable. While it is down nothing is stored, checked or previewed.',
  },
  {
    id: 'frames_dropped',
    rule: 'SpimstreamFramesDropped',
    fires:
      'Frames were lost in the last 60 s: overrun (spimstream fell behind the ring), gap (the camera counter skipped: lost before the ring) or torn.',
    todo: 'overrun: the PC is overloaded (CPU, block pool on the page) or the ring is too small; gap: check the camera link and the acquisition software.',
  },
  {
    id: 'frames_unstored',
    rule: 'SpimstreamFramesUnstored',
    fires: 'Frames were received (QC and preview ran) but not written in the last 60 s; the reason label says why.',
    todo: 'block-pool-full: encoding cannot keep up (CPU); frame-pool-full: spimstream as a whole cannot keep up (CPU), frames were skipped in the ring before it overflowed; write-backlog: the disk cannot keep up; an error code (ENOSPC, EROFS, ...): see storage.',
  },
  {
    id: 'storage',
    rule: 'SpimstreamStorageFailed',
    fires: 'Storing stopped: a disk error or the disk guard (free space below storage.min_free_bytes).',
    todo: 'Free space or fix the disk; storing resumes by itself once a probe write succeeds, in new shards. The sidecar log names the error.',
  },
  {
    id: 'focus_lost',
    rule: 'SpimstreamFocusLost',
    fires: "A stack's best plane is below the usual focus of the same planes by more than qc.thresholds.focus_drop_ratio.",
    todo: 'Check the light-sheet alignment and the detection focus; refocus; look for a bubble or a sample that moved. If the change was deliberate, accept it as the new baseline on the page.',
  },
  {
    id: 'saturation',
    rule: 'SpimstreamSaturation',
    fires: "More than qc.thresholds.saturated_ratio of a stack's pixels are at or above camera.saturation_level.",
    todo: 'Lower the laser power or the exposure: saturated pixels are lost information. Focus and drift of saturated planes are not judged meanwhile.',
  },
  {
    id: 'drift',
    rule: 'SpimstreamDrift',
    fires: 'The centre plane moved more than qc.thresholds.drift_um against the reference timepoint.',
    todo: 'Check the sample mount and the stage; let the chamber reach temperature; re-centre the sample.',
  },
  {
    id: 'ring_filling',
    rule: 'SpimstreamRingFilling',
    fires: 'The shared-memory ring is fuller than qc.thresholds.ring_fill_ratio: spimstream is falling behind the camera.',
    todo: 'Frames will be lost when it is full: reduce the rate or the QC (qc.focus, qc.drift_planes), or give the sidecar more CPU.',
  },
  {
    id: 'offload_stalled',
    rule: 'SpimstreamOffloadStalled',
    fires: 'Nothing was verified at offload.destination for offload.stall_seconds while files wait.',
    todo: 'The sidecar log says why (unreachable, refused, destination-full, verify); fix the destination or the credentials. Local files are kept and offload resumes by itself; watch the local disk.',
  },
  {
    id: 'handoff_failed',
    rule: 'SpimstreamHandoffFailed',
    fires: 'offload.on_complete (the hand-off to processing) exited non-zero, could not start or timed out in the last hour.',
    todo: "The data is offloaded and verified; only its processing is missing. The sidecar log has the command's output (on_complete: …) and the Slurm job ids; look at the jobs (sacct -j ID, their logs), fix, and start the workflow again by hand for that store (SPIMSTREAM_DESTINATION=… snakemake …). The next acquisition is not affected. Clears an hour after the last failure.",
  },
  {
    id: 'disk_low',
    rule: 'SpimstreamDiskLow',
    fires: 'Less than qc.thresholds.disk_free_bytes free on the output disk.',
    todo: 'Make room or change --out before the disk guard stops storing.',
  },
  {
    id: 'local_disk_full_soon',
    rule: 'SpimstreamLocalDiskFullSoon',
    fires: "At the last minute's net inflow the output disk reaches storage.min_free_bytes within qc.thresholds.disk_full_in_s.",
    todo: 'Offload is behind or stalled, or delete_local is off: make room, fix the destination, or change --out.',
  },
];

/** The /runbook page: static HTML, one section per alert. */
export function runbookHtml(): string {
  const sections = RUNBOOK.map(
    (r) =>
      `<section id="${r.id}"><h2>${esc(r.id)} <small>${esc(r.rule)}</small></h2><p><b>Fires when</b> ${esc(r.fires)}</p><p><b>What to do</b> ${esc(r.todo)}</p></section>`,
  ).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>spimstream alerts: what to do</title><style>
body{font:14px/1.5 system-ui,sans-serif;margin:20px;max-width:60em;color:#1f2328}small{color:#57606a;font-weight:normal}section:target{background:#fff8c5}
</style></head><body><h1>spimstream alerts: what to do</h1>
${sections}
</body></html>
`;
}

/** The runbook link of one rule (base: alerting.runbook_url, else the scraped sidecar's own page). */
export function runbookUrl(rule: string, base: string): string {
  const entry = RUNBOOK.find((r) => r.rule === rule);
  if (!entry) throw new Error(`no runbook entry for ${rule}`);
  return `${base || 'http://{{ $labels.instance }}/runbook'}#${entry.id}`;
}
