// The QC plots: uPlot (MIT, served from its npm package) time-series with time axes, units and
// ranges that stay readable when a value is constant or zero.
/* global uPlot */
const H = 110;

const PLOTS = {
  focus: { el: 'p-focus', series: [['focus', 'stack mean', '#7ee787']], unit: '' },
  sat: { el: 'p-sat', series: [['sat', 'saturated', '#ff7b72']], unit: '%', floor0: true },
  drift: {
    el: 'p-drift',
    series: [
      ['dx', 'x', '#ff5050'],
      ['dy', 'y', '#50a0ff'],
    ],
    unit: 'µm',
    symmetric: true,
  },
  int: { el: 'p-int', series: [['int', 'relative', '#d2a8ff']], unit: '×' },
};

/** Tick labels with as many decimals as the tick step needs, so 1.00 and 1.05 never both read "1". */
export function tickLabels(vals, step, unit) {
  const decimals = Number.isFinite(step) && step > 0 ? Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))) : 2;
  return vals.map((v) => `${v.toFixed(decimals)}${unit ? ` ${unit}` : ''}`);
}

/** Clock time as HH:MM:SS (24 h) at every zoom: never "11:29pm" beside plain seconds. */
export function clockLabels(vals) {
  const two = (n) => String(n).padStart(2, '0');
  return vals.map((s) => {
    const d = new Date(s * 1000);
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  });
}

/** A y range with room around the data; never [-0.5, 0.5] for a constant 0 %. */
function yRange(p, lo, hi, extra) {
  if (!Number.isFinite(lo)) {
    lo = 0;
    hi = 1;
  }
  if (extra !== undefined) hi = Math.max(hi, extra);
  if (p.symmetric) {
    const m = Math.max(Math.abs(lo), Math.abs(hi), 0.5);
    return [-m * 1.1, m * 1.1];
  }
  let span = hi - lo;
  if (span < Math.abs(hi) * 1e-3 || span === 0) span = Math.max(Math.abs(hi) * 0.1, p.floor0 ? 0.01 : 1e-6);
  const a = p.floor0 ? 0 : lo - span * 0.15;
  return [a, hi + span * 0.15];
}

export function createPlots(width) {
  const made = {};
  for (const [key, p] of Object.entries(PLOTS)) {
    const el = document.getElementById(p.el);
    const opts = {
      width,
      height: H,
      legend: { show: false },
      cursor: { show: false },
      // The x range: the last minute at least, up to now (a few fresh points do not show milliseconds).
      scales: {
        x: {
          time: true,
          range: (_u, lo, _hi) => {
            const now = Date.now() / 1000;
            return [Math.min(Number.isFinite(lo) ? lo : now, now - 60), now];
          },
        },
        y: { range: (_u, lo, hi) => yRange(p, lo, hi, made[key]?.extra) },
      },
      axes: [
        {
          stroke: '#8a96a3',
          grid: { stroke: '#222' },
          ticks: { stroke: '#333' },
          font: '10px sans-serif',
          size: 24,
          space: 60,
          values: (_u, vals) => clockLabels(vals),
        },
        {
          stroke: '#8a96a3',
          grid: { stroke: '#222' },
          ticks: { stroke: '#333' },
          font: '10px sans-serif',
          size: 62,
          values: (_u, vals, _axis, _space, step) => tickLabels(vals, step, p.unit),
        },
      ],
      series: [{}, ...p.series.map(([, label, color]) => ({ label, stroke: color, width: 1.5, spanGaps: true, points: { show: false } }))],
    };
    made[key] = { p, u: new uPlot(opts, [[], ...p.series.map(() => [])], el), extra: undefined };
  }
  return made;
}

/** series: { name: [[ms, value], ...] } of one stream; satThresholdPct keeps the threshold in view. */
export function updatePlots(made, series, satThresholdPct) {
  for (const [key, m] of Object.entries(made)) {
    const names = m.p.series.map(([n]) => n);
    // Aligned columns: the first series' times (drift x and y arrive together).
    const base = series?.[names[0]] || [];
    const xs = base.map(([t]) => t / 1000);
    const cols = names.map((n) => {
      const s = series?.[n] || [];
      return n === names[0] ? s.map(([, v]) => v) : xs.map((_, i) => (s[i] ? s[i][1] : null));
    });
    m.extra = key === 'sat' ? satThresholdPct * 1.2 : undefined;
    m.u.setData([xs, ...cols]);
    document.getElementById(m.p.el).dataset.points = String(xs.length);
  }
}
