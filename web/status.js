// The status panel: frame rates, losses by kind, disk, offload backlog and ring fill, from the
// sidecar's `status` message. Only writes text into the page's elements.
import { $ } from './dom.js';

export function fmtDur(s) {
  if (s === null || s === undefined) return '–';
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  return s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`;
}

export function fmtBytes(b) {
  if (b === null || b === undefined) return '–';
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < u.length - 1) {
    b /= 1000;
    i++;
  }
  return `${b.toFixed(1)} ${u[i]}`;
}

/** The status panel from one `status` message; `stream` is the stream shown. */
export function renderStatus(m, stream) {
  const s = m.streams?.[stream];
  $('st-fps-stream').textContent = stream ?? '–';
  $('st-fps').textContent = s ? s.fps.toFixed(1) : '–';
  const all = Object.values(m.streams || {}).reduce((a, x) => a + x.fps, 0);
  $('st-fps-all').textContent = m.streams && Object.keys(m.streams).length ? all.toFixed(1) : '–';
  $('st-dropped').textContent = `${m.frames_overrun + m.frames_gap + (m.frames_torn ?? 0)}`;
  $('st-unstored').textContent = `${m.frames_unstored}`;
  $('st-qcsampled').textContent = `${m.qc_sampled ?? 0}`;
  // Why, when it happened: the workers behind the frames, or encoding (or the disk) behind.
  const why = Object.entries(m.qc_sampled_reasons || {}).map(([r, n]) => `${r.replace('-', ' ')} ${n}`);
  $('st-qcsampled-why').textContent = why.length ? ` (${why.join(', ')})` : '';
  $('st-prevthrottled').textContent = `${m.previews_throttled ?? 0}`;
  $('st-ratio').textContent = m.compression_ratio ? `${m.compression_ratio.toFixed(2)}×` : '–';
  $('st-disk').textContent = fmtBytes(m.disk_free_bytes);
  // null: free space is not shrinking (or storage is off).
  $('st-disk-full').textContent = m.disk_full_in_s === null || m.disk_full_in_s === undefined ? 'not filling' : fmtDur(m.disk_full_in_s);
  // Offload: what waits locally for a verified copy at the destination, how old the oldest is, when it is done.
  const o = m.offload;
  $('st-offload-box').hidden = !o;
  $('offload-stores').hidden = !o || o.stores.length === 0;
  if (o) {
    $('st-offload').textContent =
      o.files === 0
        ? 'all verified'
        : `${o.files} files · ${fmtBytes(o.bytes)} waiting · oldest ${Math.round(o.lagSeconds)} s · ${fmtBytes(o.rateBps)}/s · ETA ${o.etaSeconds === null ? (o.stalled ? 'stalled' : '–') : fmtDur(o.etaSeconds)}${o.urgent ? " · at storing's priority (local disk tight)" : ''}`;
    $('offload-stores').textContent = o.stores
      .map(
        (x) =>
          `${x.store}: ${x.state} · ${x.verifiedFiles}/${x.files} files verified · ${fmtBytes(x.bytes - x.verifiedBytes)} left${x.state === 'complete' || x.etaSeconds === 0 ? '' : ` · ETA ${fmtDur(x.etaSeconds)}`}`,
      )
      .join('   |   ');
  }
  $('st-ring').textContent = `${Math.round(m.ring_fill_ratio * 100)}%`;
  $('acq').textContent = m.acquisition
    ? `${m.acquisition.name}${m.storage_error ? ' · NOT STORING' : ''}`
    : m.attached
      ? 'idle'
      : 'waiting for ring…';
}
