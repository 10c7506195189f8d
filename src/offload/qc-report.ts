/**
 * `qc-report.html` beside the manifest: one self-contained page (inline SVG and CSS, no script, no
 * network) with the acquisition's QC over time per channel, the losses and the metadata, so a
 * microscopist sees at a glance whether a week-long run is usable.
 */
import { escapeHtml as esc } from '../html-escape.js';
import { streamId } from '../pipeline/events.js';

export interface ReportStack {
  t: number;
  channel: string;
  view: string;
  mean_focus: number | null;
  focus_relative: number | null;
  max_saturated_ratio: number;
  mean_signal: number;
  drift_px: [number, number] | null;
}

/** An alert that fired during the acquisition (cleared null: still firing at its end). */
export interface ReportAlert {
  name: string;
  stream: string | null;
  fired: string;
  cleared: string | null;
  message: string;
}

export interface ReportInput {
  name: string;
  alerts: ReportAlert[];
  /** Seconds between timepoints, when configured (null: the axis is in timepoints only). */
  timeStepS: number | null;
  started: string;
  finished: string;
  frames: {
    received: number;
    lost: Record<string, number>;
    unstored: Record<string, number>;
    qc_sampled: number;
    /** Absent in manifests written before it was recorded. */
    qc_sampled_reasons?: Record<string, number>;
  };
  bytes: { written: number; compression_ratio: number };
  stacks: ReportStack[];
  metadata: unknown;
  pixelSizeUm: number;
  version: string;
}

/** 2026-12-07 04:12:03 UTC from an ISO time. */
export const humanTime = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;

/** "12 (a: 10, b: 2)", or the bare total when no reason was recorded. */
function withReasons(total: number, reasons: Record<string, number>): string | number {
  const why = Object.entries(reasons).map(([k, v]) => `${k}: ${v}`);
  return why.length ? `${total} (${why.join(', ')})` : total;
}

export function humanBytes(b: number): string {
  if (b >= 1e12) return `${(b / 1e12).toFixed(2)} TB`;
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB`;
  return `${b} B`;
}

export function humanDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '–';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${sec} s` : `${sec} s`;
}

const W = 520;
const H = 120;
const PAD = { l: 64, r: 8, t: 8, b: 22 };

/** "GFP/0" as "GFP · view 0". */
const streamTitle = (id: string): string => {
  const i = id.lastIndexOf('/');
  return i < 0 ? id : `${id.slice(0, i)} · view ${id.slice(i + 1)}`;
};

/** One line plot (x = timepoint), as SVG; series of [t, value | null]. */
/** minSpan: the smallest y range shown (a constant 0 % reads as 0–0.1 %, not ±0.000001). */
function plot(
  title: string,
  unit: string,
  series: { color: string; pts: [number, number | null][] }[],
  floor0 = false,
  minSpan = 0,
  timeStepS: number | null = null,
): string {
  const vals = series.flatMap((s) => s.pts.map(([, v]) => v).filter((v): v is number => v !== null && Number.isFinite(v)));
  const ts = series.flatMap((s) => s.pts.map(([t]) => t));
  if (vals.length === 0) return `<figure><figcaption>${esc(title)}</figcaption><p class="none">no data</p></figure>`;
  let lo = floor0 ? 0 : Math.min(...vals);
  let hi = Math.max(...vals);
  if (hi - lo < Math.abs(hi) * 1e-3 || hi === lo) {
    const d = Math.max(Math.abs(hi) * 0.1, 1e-6);
    lo = floor0 ? 0 : lo - d;
    hi += d;
  }
  if (hi - lo < minSpan) {
    const mid = (hi + lo) / 2;
    lo = floor0 ? 0 : mid - minSpan / 2;
    hi = floor0 ? Math.max(hi, minSpan) : mid + minSpan / 2;
  }
  const t0 = Math.min(...ts);
  const t1 = Math.max(t0 + 1, Math.max(...ts));
  const x = (t: number) => PAD.l + ((t - t0) / (t1 - t0)) * (W - PAD.l - PAD.r);
  const y = (v: number) => H - PAD.b - ((v - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
  const fmt = (v: number) => `${Number(v.toPrecision(3))}${unit ? ` ${unit}` : ''}`;
  const lines = series
    .map((s) => {
      let d = '';
      let pen = false;
      for (const [t, v] of s.pts) {
        if (v === null || !Number.isFinite(v)) {
          pen = false;
          continue;
        }
        d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      }
      // Points with no neighbour (a value between gaps) are dots: a one-point path draws nothing.
      const dots = s.pts
        .filter(([, v], i) => v !== null && Number.isFinite(v) && !(s.pts[i - 1]?.[1] != null) && !(s.pts[i + 1]?.[1] != null))
        .map(([t, v]) => `<circle cx="${x(t).toFixed(1)}" cy="${y(v as number).toFixed(1)}" r="2" fill="${s.color}"/>`)
        .join('');
      return `<path d="${d}" stroke="${s.color}" fill="none" stroke-width="1.5"/>${dots}`;
    })
    .join('');
  return (
    `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">` +
    `<line x1="${PAD.l}" y1="${H - PAD.b}" x2="${W - PAD.r}" y2="${H - PAD.b}" class="ax"/><line x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${H - PAD.b}" class="ax"/>` +
    `<text x="${PAD.l - 4}" y="${PAD.t + 8}" text-anchor="end">${esc(fmt(hi))}</text><text x="${PAD.l - 4}" y="${H - PAD.b}" text-anchor="end">${esc(fmt(lo))}</text>` +
    `<text x="${PAD.l}" y="${H - 6}">${esc(tLabel(t0, timeStepS))}</text><text x="${W - PAD.r}" y="${H - 6}" text-anchor="end">${esc(tLabel(t1, timeStepS))}</text>${lines}</svg></figure>`
  );
}

/** An x-axis end: the timepoint, and its time from the start where the time step is known. */
function tLabel(t: number, timeStepS: number | null): string {
  return timeStepS ? `${humanDuration(t * timeStepS)} (timepoint ${t})` : `timepoint ${t}`;
}

/** Nested metadata as "a.b" rows, never raw JSON. */
function flatten(o: unknown, prefix = ''): [string, string][] {
  if (o === null || typeof o !== 'object') return [[prefix || 'value', String(o)]];
  if (Array.isArray(o) && o.every((v) => v === null || typeof v !== 'object')) return [[prefix, o.join(', ')]];
  return Object.entries(o).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
}

function alertTable(alerts: ReportAlert[]): string {
  if (alerts.length === 0) return '<p class="ok" id="alerts">no alert fired</p>';
  const rows = alerts
    .map((a) => {
      const until = a.cleared ? humanTime(a.cleared) : 'still firing at the end';
      const lasted = a.cleared ? humanDuration((Date.parse(a.cleared) - Date.parse(a.fired)) / 1000) : '–';
      return `<tr><td>${esc(a.name)}</td><td>${esc(a.stream ?? '–')}</td><td>${esc(humanTime(a.fired))}</td><td>${esc(until)}</td><td>${esc(lasted)}</td><td>${esc(a.message)}</td></tr>`;
    })
    .join('');
  return `<table id="alerts"><tr><th>alert</th><th>stream</th><th>fired</th><th>cleared</th><th>lasted</th><th>message</th></tr>${rows}</table>`;
}

export function renderQcReport(r: ReportInput): string {
  const streams = [...new Set(r.stacks.map((s) => streamId(s)))].sort();
  const um = r.pixelSizeUm;
  const ts = r.timeStepS;
  const sections = streams
    .map((id) => {
      const st = r.stacks.filter((s) => streamId(s) === id).sort((a, b) => a.t - b.t);
      return (
        `<section class="stream"><h2>${esc(streamTitle(id))}</h2>` +
        plot('focus (stack mean; higher = sharper)', '', [{ color: '#2da44e', pts: st.map((s) => [s.t, s.mean_focus]) }], false, 0, ts) +
        plot(
          'focus relative to the usual (focus_lost below 0.7)',
          '×',
          [{ color: '#1a7f37', pts: st.map((s) => [s.t, s.focus_relative]) }],
          false,
          0.4,
          ts,
        ) +
        plot(
          'saturated pixels (max over the stack)',
          '%',
          [{ color: '#cf222e', pts: st.map((s) => [s.t, s.max_saturated_ratio * 100]) }],
          true,
          0.1,
          ts,
        ) +
        plot(
          'drift of the centre plane (x red, y blue)',
          'µm',
          [
            { color: '#cf222e', pts: st.map((s) => [s.t, s.drift_px ? s.drift_px[0] * um : null]) },
            { color: '#0969da', pts: st.map((s) => [s.t, s.drift_px ? s.drift_px[1] * um : null]) },
          ],
          false,
          1,
          ts,
        ) +
        plot(
          'intensity (mean signal above offset)',
          'ADU',
          [{ color: '#8250df', pts: st.map((s) => [s.t, s.mean_signal]) }],
          false,
          0,
          ts,
        ) +
        '</section>'
      );
    })
    .join('');
  const rows = (o: Record<string, unknown>) =>
    Object.entries(o)
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`)
      .join('');
  const lost = Object.values(r.frames.lost).reduce((a, b) => a + b, 0);
  const unstored = Object.values(r.frames.unstored).reduce((a, b) => a + b, 0);
  const verdict =
    lost === 0 && unstored === 0
      ? '<p class="ok">every frame received was stored; none lost</p>'
      : `<p class="bad">${lost} frames lost, ${unstored} not stored: see below</p>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>QC report — ${esc(r.name)}</title><style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#1f2328}h1{font-size:18px}h2{font-size:15px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #d0d7de;padding:2px 8px;text-align:left;vertical-align:top}
figure{display:inline-block;margin:4px 12px 4px 0}figcaption{font-size:12px;color:#57606a}svg text{font-size:10px;fill:#57606a}
.ax{stroke:#8c959f}.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.none{color:#8c959f}
</style></head><body><h1>QC report — ${esc(r.name)}</h1>${verdict}
<table id="summary">${rows({
    started: humanTime(r.started),
    finished: humanTime(r.finished),
    duration: humanDuration((Date.parse(r.finished) - Date.parse(r.started)) / 1000),
    'frames received': r.frames.received,
    'frames lost (overrun)': r.frames.lost.overrun ?? 0,
    'frames lost (gap)': r.frames.lost.gap ?? 0,
    'frames lost (torn)': r.frames.lost.torn ?? 0,
    'frames not stored': withReasons(unstored, r.frames.unstored),
    'QC sampled': withReasons(r.frames.qc_sampled, r.frames.qc_sampled_reasons ?? {}),
    'written to disk': humanBytes(r.bytes.written),
    'compression ratio': Number(r.bytes.compression_ratio.toFixed(3)),
    spimstream: r.version,
  })}</table>
<h2>Alerts</h2>${alertTable(r.alerts)}
${sections}<h2>Metadata</h2><table id="metadata">${rows(Object.fromEntries(flatten(r.metadata ?? {})))}</table></body></html>
`;
}
