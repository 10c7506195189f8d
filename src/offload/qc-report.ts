/**
 * `qc-report.html` beside the manifest: one self-contained page (inline SVG and CSS, no script, no
 * network) with the acquisition's QC over time per channel, the losses and the metadata, so a
 * microscopist sees at a glance whether a week-long run is usable.
 */

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

export interface ReportInput {
  name: string;
  started: string;
  finished: string;
  frames: { received: number; lost: Record<string, number>; unstored: Record<string, number>; qc_sampled: number };
  bytes: { written: number; compression_ratio: number };
  stacks: ReportStack[];
  metadata: unknown;
  pixelSizeUm: number;
  version: string;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
const W = 520;
const H = 120;
const PAD = { l: 64, r: 8, t: 8, b: 22 };

/** One line plot (x = timepoint), as SVG; series of [t, value | null]. */
/** minSpan: the smallest y range shown (a constant 0 % reads as 0–0.1 %, not ±0.000001). */
function plot(
  title: string,
  unit: string,
  series: { color: string; pts: [number, number | null][] }[],
  floor0 = false,
  minSpan = 0,
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
    `<text x="${PAD.l}" y="${H - 6}">t ${t0}</text><text x="${W - PAD.r}" y="${H - 6}" text-anchor="end">t ${t1} (timepoint)</text>${lines}</svg></figure>`
  );
}

export function renderQcReport(r: ReportInput): string {
  const streams = [...new Set(r.stacks.map((s) => `${s.channel}/${s.view}`))].sort();
  const um = r.pixelSizeUm;
  const sections = streams
    .map((id) => {
      const st = r.stacks.filter((s) => `${s.channel}/${s.view}` === id).sort((a, b) => a.t - b.t);
      return (
        `<section class="stream"><h2>${esc(id)}</h2>` +
        plot('focus (stack mean; higher = sharper)', '', [{ color: '#2da44e', pts: st.map((s) => [s.t, s.mean_focus]) }]) +
        plot(
          'focus relative to the usual (focus_lost below 0.7)',
          '×',
          [{ color: '#1a7f37', pts: st.map((s) => [s.t, s.focus_relative]) }],
          false,
          0.4,
        ) +
        plot(
          'saturated pixels (max over the stack)',
          '%',
          [{ color: '#cf222e', pts: st.map((s) => [s.t, s.max_saturated_ratio * 100]) }],
          true,
          0.1,
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
        ) +
        plot('intensity (mean signal above offset)', 'ADU', [{ color: '#8250df', pts: st.map((s) => [s.t, s.mean_signal]) }]) +
        '</section>'
      );
    })
    .join('');
  const rows = (o: Record<string, unknown>) =>
    Object.entries(o)
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : String(v))}</td></tr>`)
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
    started: r.started,
    finished: r.finished,
    'frames received': r.frames.received,
    'frames lost (overrun)': r.frames.lost.overrun ?? 0,
    'frames lost (gap)': r.frames.lost.gap ?? 0,
    'frames lost (torn)': r.frames.lost.torn ?? 0,
    'frames not stored': Object.keys(r.frames.unstored).length
      ? `${unstored} (${Object.entries(r.frames.unstored)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')})`
      : 0,
    'QC sampled': r.frames.qc_sampled,
    'bytes written': r.bytes.written,
    'compression ratio': Number(r.bytes.compression_ratio.toFixed(3)),
    spimstream: r.version,
  })}</table>
${sections}<h2>Metadata</h2><table id="metadata">${rows((r.metadata ?? {}) as Record<string, unknown>)}</table></body></html>
`;
}
