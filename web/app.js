// spimstream live page, no build step: the connection (one WebSocket carries previews and volumes
// as binary, QC, status and alerts as JSON), the page's state and its controls. Each view and panel
// is its own module; the preview and volume decoders are the server's own (src/server/*-protocol.ts,
// compiled, served at /lib/).
import { decodePreview } from '/lib/preview-protocol.js';
import { decodeVolume } from '/lib/volume-protocol.js';
import { drawHistogram } from './histogram.js';
import { lutFor } from './lut.js';
import { bindMetadataForm, fillMetadata } from './metadata.js';
import { PlaneView } from './plane-view.js';
import { createPlots, updatePlots } from './plots.js';
import { renderStatus } from './status.js';
import { VolumeView } from './volume.js';
import { $ } from './dom.js';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
// Deep links: ?stream=GFP/0&view=plane|mip|ortho|3d (bookmarkable per scope).
const VIEWS = ['plane', 'mip', 'ortho', '3d'];
const linked = { stream: params.get('stream'), view: VIEWS.includes(params.get('view')) ? params.get('view') : null };
const state = {
  excluded: new Map(),
  hello: null,
  stream: null,
  kind: linked.view ?? 'plane',
  lo: null,
  hi: null,
  img: null,
  alerts: new Map(),
  byStream: {},
  lastHist: null,
  /** Recent QC histograms of the selected stream by "t/z", to show the one of the plane on screen. */
  hists: new Map(),
  /** What the image shows: { kind, t, z }. */
  shown: null,
  frames: 0,
};
const HISTORY_MS = 5 * 60 * 1000;
let ws = null;
let retry = 1000;

function connect() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    setConn(true);
    retry = 1000;
  };
  ws.onclose = (ev) => {
    // 1013: the sidecar has server.max_clients viewers already; try again less often.
    setConn(false, ev.code === 1013 ? `refused: ${ev.reason || 'too many viewers'}` : null);
    setTimeout(connect, ev.code === 1013 ? 15000 : retry);
    retry = Math.min(retry * 2, 5000);
  };
  ws.onerror = () => ws.close();
  ws.onmessage = (ev) => (typeof ev.data === 'string' ? onJson(JSON.parse(ev.data)) : onBinary(ev.data));
}

function setConn(ok, why = null) {
  const c = $('conn');
  c.textContent = ok ? 'live' : (why ?? 'reconnecting…');
  c.className = `conn ${ok ? 'ok' : 'bad'}`;
}

function subscribe() {
  if (ws?.readyState !== 1 || !state.stream) return;
  const auto = $('auto').checked;
  const lo = Number($('lo').value);
  const hi = Number($('hi').value);
  // An impossible window is refused where it was typed, never silently replaced by auto contrast.
  const bad = !auto && !($('lo').value !== '' && $('hi').value !== '' && hi > lo);
  for (const id of ['lo', 'hi']) $(id).classList.toggle('invalid', bad);
  $('winerr').textContent = bad
    ? `min ${$('lo').value || '–'} must be below max ${$('hi').value || '–'}: the window shown is unchanged`
    : '';
  if (bad) return;
  ws.send(
    JSON.stringify({
      type: 'subscribe',
      stream: state.stream,
      fps: Number($('fps').value),
      format: $('format').value,
      window: auto ? null : [lo, hi],
      mip: state.kind === 'mip',
      volume: state.kind === 'ortho' || state.kind === '3d',
    }),
  );
}

const volumeView = new VolumeView();
const planeView = new PlaneView($('view'));
state.volume = volumeView;

/** Shows the plane/MIP canvas or the volume views for the chosen kind. */
function showKind() {
  const vol = state.kind === 'ortho' || state.kind === '3d';
  // style, not the hidden attribute: the stylesheet gives the plane canvas a display of its own.
  $('view').style.display = vol ? 'none' : '';
  $('imginfo').style.display = vol ? 'none' : '';
  $('volume').hidden = !vol;
  if (vol) volumeView.setMode(state.kind);
  for (const r of document.querySelectorAll('input[name=kind]')) r.checked = r.value === state.kind;
}

function onBinary(buf) {
  const b = new Uint8Array(buf);
  if (b[0] === 0x53 && b[1] === 0x50 && b[2] === 0x56 && b[3] === 0x4c) {
    // SPVL: the latest stack's volume; the window typed in, else its own percentiles.
    const auto = $('auto').checked;
    if (!volumeView.vol) volumeView.setLut(lutFor($('lut').value, state.hello, state.stream)); // the channel colour is known by now
    volumeView.show(decodeVolume(b), auto ? null : [Number($('lo').value), Number($('hi').value)], state.hello?.saturation_level ?? 65535);
    return;
  }
  void onPreview(buf);
}

function onJson(m) {
  if (m.type === 'hello') {
    state.hello = m;
    const sel = $('stream');
    const prev = state.stream;
    sel.innerHTML = '';
    for (const s of m.streams) sel.add(new Option(`${s.camera} · ${s.channel} · view ${s.view}`, s.id));
    const want = prev ?? linked.stream;
    state.stream = m.streams.some((s) => s.id === want) ? want : (m.streams[0]?.id ?? null);
    sel.value = state.stream;
    for (const a of m.alerts || []) state.alerts.set(`${a.name}/${a.stream}`, a);
    renderAlerts();
    fillMetadata(m.metadata);
    $('focus-measure').textContent = m.focus_measures?.[0] || 'dcts';
    subscribe();
  } else if (m.type === 'history') {
    // The server's last minutes of every stream's series: the plots start filled after a reload.
    for (const [id, series] of Object.entries(m.series || {})) state.byStream[id] = series;
    drawPlots();
  } else if (m.type === 'qc') {
    push(m.stream, 'sat', m.saturated_ratio * 100);
    if (m.drift?.valid) {
      const um = state.hello ? state.hello.pixel_size_um.x : 1;
      push(m.stream, 'dx', m.drift.dx * um);
      push(m.stream, 'dy', m.drift.dy * um);
    }
    if (m.stream !== state.stream) return;
    state.hists.set(`${m.t}/${m.z}`, m);
    if (state.hists.size > 64) state.hists.delete(state.hists.keys().next().value);
    const s = state.shown;
    // The histogram of the plane on screen when QC has it; else the newest frame's, saying which.
    if (s?.kind === 'plane' && state.hists.has(`${s.t}/${s.z}`) && !(s.t === m.t && s.z === m.z)) return;
    showHist(m);
  } else if (m.type === 'stack') {
    // Plotted only when every plane was measured and the stack is judged: focusPlottable in
    // src/qc/qc-types.ts (a partly sampled stack's mean is over other planes and shows as a jump).
    if (m.qc.planes > 0 && m.qc.focusPlanes === m.qc.planes && !m.qc.excluded) push(m.stream, 'focus', m.qc.meanFocus);
    if (m.qc.excluded) state.excluded.set(m.stream, { t: m.t, why: m.qc.excluded });
    else state.excluded.delete(m.stream);
    renderBaseline();
  } else if (m.type === 'status') {
    renderStatus(m, state.stream);
    for (const [id, x] of Object.entries(m.streams || {})) push(id, 'int', x.intensity_relative);
    drawPlots();
  } else if (m.type === 'alert') {
    const k = `${m.name}/${m.stream}`;
    if (m.active) state.alerts.set(k, m);
    else state.alerts.delete(k);
    renderAlerts();
  } else if (m.type === 'metadata') {
    fillMetadata(m.metadata);
  }
}

function renderBaseline() {
  const box = $('baseline');
  box.hidden = state.excluded.size === 0;
  const why = { saturated: 'saturated', 'intensity-step': 'intensity changed' };
  $('baseline-text').textContent =
    `QC not judged for ${[...state.excluded].map(([s, e]) => `${s} (${why[e.why] || e.why} since t=${e.t})`).join(', ')}: focus and drift are kept out of the baselines.`;
}

async function rebaseline() {
  const r = await fetch('/api/rebaseline', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: '{}',
  });
  if (r.ok) {
    state.excluded.clear();
    renderBaseline();
  }
}

function renderAlerts() {
  const box = $('alerts');
  box.innerHTML = '';
  for (const a of state.alerts.values()) {
    const d = document.createElement('div');
    d.className = 'alert';
    d.dataset.alert = a.name;
    d.textContent = `⚠ ${a.name.replace(/_/g, ' ')}${a.stream ? ` (${a.stream})` : ''}: ${a.message}`;
    box.appendChild(d);
  }
}

function push(stream, name, v) {
  if (!stream) return;
  const now = Date.now();
  const series = (state.byStream[stream] ||= {});
  const s = (series[name] ||= []);
  s.push([now, v]);
  while (s.length && s[0][0] < now - HISTORY_MS) s.shift();
}

let plots = null;
function drawPlots() {
  if (typeof uPlot === 'undefined') return;
  plots ||= createPlots(392);
  window.spimstreamPlots = plots;
  const satPct = state.hello ? state.hello.thresholds.saturated_ratio * 100 : 0.1;
  updatePlots(plots, state.byStream[state.stream], satPct);
}

function showHist(m) {
  state.lastHist = m.histogram;
  state.histLo = m.histogram_lo;
  state.histHi = m.histogram_hi;
  drawHistogram($('hist'), {
    bins: state.lastHist,
    lo: state.histLo,
    hi: state.histHi,
    saturation: state.hello ? state.hello.saturation_level : 65535,
    window: state.lo === null ? null : [state.lo, state.hi],
  });
  const s = state.shown;
  const same = s?.kind === 'plane' && s.t === m.t && s.z === m.z;
  const which = same
    ? `the plane shown (t=${m.t}, z=${m.z})`
    : `the newest frame t=${m.t}, z=${m.z}${s ? ` (the image shows ${s.kind === 'mip' ? `the MIP of t=${s.t}` : `t=${s.t}, z=${s.z}`})` : ''}`;
  $('histinfo').textContent = `histogram of ${which} · min ${m.min} · p50 ${m.p50} · p99.9 ${m.p999} · max ${m.max} ADU`;
}

async function onPreview(buf) {
  let m;
  try {
    m = decodePreview(new Uint8Array(buf));
  } catch {
    return; // not a preview message
  }
  const { kind, level, width: w, height: h, t, z } = m;
  if (kind !== state.kind) return;
  state.lo = m.lo;
  state.hi = m.hi;
  state.shown = { kind, t, z };
  const qc = kind === 'plane' ? state.hists.get(`${t}/${z}`) : undefined;
  if (qc) showHist(qc);
  const satCount = m.saturated.length;
  await planeView.show(m, lutFor($('lut').value, state.hello, state.stream), $('sathl').checked);
  state.frames++;
  $('imginfo').textContent =
    `${kind === 'mip' ? 'stack MIP' : 'plane'} t=${t}${kind === 'plane' ? ` z=${z}` : ''} · ${w}×${h}${level > 0 ? ` (pyramid level ${level})` : ''} · window ${state.lo.toFixed(0)}–${state.hi.toFixed(0)} ADU · ${satCount} saturated · previews ${state.frames}`;
  if ($('auto').checked) {
    $('lo').value = Math.round(state.lo);
    $('hi').value = Math.round(state.hi);
  }
}

bindMetadataForm(token);
$('fit').addEventListener('click', () => planeView.fit());
$('rebaseline').addEventListener('click', () => {
  void rebaseline();
});
$('stream').addEventListener('change', (e) => {
  state.stream = e.target.value;
  state.hists.clear();
  state.shown = null;
  subscribe();
  drawPlots();
});
for (const r of document.querySelectorAll('input[name=kind]'))
  r.addEventListener('change', (e) => {
    state.kind = e.target.value;
    showKind();
    subscribe();
  });
showKind();
for (const id of ['auto', 'fps', 'format']) $(id).addEventListener('change', subscribe);
for (const id of ['lo', 'hi'])
  $(id).addEventListener('change', () => {
    $('auto').checked = false;
    subscribe();
  });
$('lut').addEventListener('change', () => volumeView.setLut(lutFor($('lut').value, state.hello, state.stream)));
$('render3d').addEventListener('change', () => volumeView.setRender($('render3d').value));
if (params.get('render') === 'alpha') {
  $('render3d').value = 'alpha';
  volumeView.setRender('alpha');
}
setInterval(drawPlots, 1000);
// For debugging in the browser console (and the end-to-end test): the live state.
window.spimstream = state;
connect();
