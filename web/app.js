// The one preview decoder: the server's own (src/server/preview-protocol.ts, compiled), served at /lib/.
import { decodePreview } from '/lib/preview-protocol.js';
import { decodeVolume } from '/lib/volume-protocol.js';
import { createPlots, updatePlots } from './plots.js';
import { VolumeView } from './volume.js';
// spimstream live page: no build step. One WebSocket carries previews (binary) and QC/status/alerts (JSON).
const $ = (id) => document.getElementById(id);
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
  imgW: 0,
  imgH: 0,
  zoom: 1,
  panX: 0,
  panY: 0,
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
    if (!volumeView.vol) volumeView.setLut(lutFor($('lut').value)); // the channel colour is known by now
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
    // A saturated or intensity-stepped stack is not judged (nor plotted): its focus says nothing.
    if (m.qc.focusPlanes > 0 && !m.qc.excluded) push(m.stream, 'focus', m.qc.meanFocus); // a fully sampled stack has no focus
    if (m.qc.excluded) state.excluded.set(m.stream, { t: m.t, why: m.qc.excluded });
    else state.excluded.delete(m.stream);
    renderBaseline();
  } else if (m.type === 'status') {
    onStatus(m);
  } else if (m.type === 'alert') {
    const k = `${m.name}/${m.stream}`;
    if (m.active) state.alerts.set(k, m);
    else state.alerts.delete(k);
    renderAlerts();
  } else if (m.type === 'metadata') {
    fillMetadata(m.metadata);
  }
}

function fmtDur(s) {
  if (s === null || s === undefined) return '–';
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  return s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`;
}

function fmtBytes(b) {
  if (b === null || b === undefined) return '–';
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < u.length - 1) {
    b /= 1000;
    i++;
  }
  return `${b.toFixed(1)} ${u[i]}`;
}

function onStatus(m) {
  const s = m.streams?.[state.stream];
  $('st-fps-stream').textContent = state.stream ?? '–';
  $('st-fps').textContent = s ? s.fps.toFixed(1) : '–';
  const all = Object.values(m.streams || {}).reduce((a, x) => a + x.fps, 0);
  $('st-fps-all').textContent = m.streams && Object.keys(m.streams).length ? all.toFixed(1) : '–';
  $('st-dropped').textContent = `${m.frames_overrun + m.frames_gap + (m.frames_torn ?? 0)}`;
  $('st-unstored').textContent = `${m.frames_unstored}`;
  $('st-qcsampled').textContent = `${m.qc_sampled ?? 0}`;
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
  for (const [id, x] of Object.entries(m.streams || {})) push(id, 'int', x.intensity_relative);
  drawPlots();
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
  drawHist();
  const s = state.shown;
  const same = s?.kind === 'plane' && s.t === m.t && s.z === m.z;
  const which = same
    ? `the plane shown (t=${m.t}, z=${m.z})`
    : `the newest frame t=${m.t}, z=${m.z}${s ? ` (the image shows ${s.kind === 'mip' ? `the MIP of t=${s.t}` : `t=${s.t}, z=${s.z}`})` : ''}`;
  $('histinfo').textContent = `histogram of ${which} · min ${m.min} · p50 ${m.p50} · p99.9 ${m.p999} · max ${m.max} ADU`;
}

function drawHist() {
  const c = $('hist');
  const g = c.getContext('2d');
  const h = state.lastHist;
  g.clearRect(0, 0, c.width, c.height);
  if (!h) return;
  const max = Math.log1p(Math.max(...h));
  const bw = c.width / h.length;
  g.fillStyle = '#9fb3c8';
  h.forEach((v, i) => {
    const bh = (Math.log1p(v) / max) * (c.height - 12);
    g.fillRect(i * bw, c.height - bh, Math.max(1, bw - 0.5), bh);
  });
  const sat = state.hello ? state.hello.saturation_level : 65535;
  const lo = state.histLo ?? 0;
  const hi = Math.max(state.histHi ?? sat + 1, lo + 1);
  const xOf = (v) => ((v - lo) / (hi - lo)) * c.width;
  g.font = '10px sans-serif';
  g.fillStyle = '#8a96a3';
  // Both labels in the top band the bars never reach (bars use the height below 12 px).
  g.textAlign = 'left';
  g.fillText(String(lo), 2, 10);
  g.textAlign = 'right';
  g.fillText(String(hi - 1), c.width - 2, 10);
  g.textAlign = 'left';
  // The saturation level: a red line where it falls, or an arrow when it is above this frame's range.
  g.strokeStyle = '#ff4040';
  g.fillStyle = '#ff4040';
  if (sat < hi) {
    const x = Math.max(1, xOf(sat));
    g.beginPath();
    g.moveTo(x, 0);
    g.lineTo(x, c.height);
    g.stroke();
    g.fillText(`saturation ${sat}`, Math.max(0, x - 90), 22);
  } else {
    g.fillText(`saturation ${sat} →`, c.width - 110, 22);
  }
  if (state.lo !== null) {
    g.strokeStyle = '#e3b341';
    for (const v of [state.lo, state.hi]) {
      const x = xOf(v);
      if (x < 0 || x > c.width) continue;
      g.beginPath();
      g.moveTo(x, 26);
      g.lineTo(x, c.height);
      g.stroke();
    }
  }
}

function lutFor(name) {
  const lut = new Uint8ClampedArray(256 * 3);
  let rgb = [1, 1, 1];
  if (name === 'channel' && state.hello) {
    const ch = state.stream ? state.stream.split('/')[0] : '';
    const hex = state.hello.channel_colors?.[ch] || 'FFFFFF';
    rgb = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  }
  for (let i = 0; i < 256; i++) {
    if (name === 'fire') {
      lut[i * 3] = Math.min(255, i * 3);
      lut[i * 3 + 1] = Math.max(0, Math.min(255, (i - 85) * 3));
      lut[i * 3 + 2] = Math.max(0, (i - 170) * 3);
    } else {
      lut[i * 3] = i * rgb[0];
      lut[i * 3 + 1] = i * rgb[1];
      lut[i * 3 + 2] = i * rgb[2];
    }
  }
  return lut;
}

const frameCanvas = document.createElement('canvas');
const scratch = document.createElement('canvas');

async function onPreview(buf) {
  let m;
  try {
    m = decodePreview(new Uint8Array(buf));
  } catch {
    return; // not a preview message
  }
  const { kind, format, level, width: w, height: h, t, z } = m;
  if (kind !== state.kind) return;
  state.lo = m.lo;
  state.hi = m.hi;
  state.shown = { kind, t, z };
  const qc = kind === 'plane' ? state.hists.get(`${t}/${z}`) : undefined;
  if (qc) showHist(qc);
  const satCount = m.saturated.length;
  let grey;
  if (format === 'raw') {
    grey = m.data;
  } else {
    const bmp = await createImageBitmap(new Blob([m.data], { type: `image/${format}` }));
    scratch.width = w;
    scratch.height = h;
    const sg = scratch.getContext('2d', { willReadFrequently: true });
    sg.drawImage(bmp, 0, 0);
    const d = sg.getImageData(0, 0, w, h).data;
    grey = new Uint8Array(w * h);
    for (let i = 0; i < w * h; i++) grey[i] = d[i * 4];
  }
  const lut = lutFor($('lut').value);
  const out = new ImageData(w, h);
  const o = out.data;
  for (let i = 0; i < w * h; i++) {
    const v = grey[i] * 3;
    o[i * 4] = lut[v];
    o[i * 4 + 1] = lut[v + 1];
    o[i * 4 + 2] = lut[v + 2];
    o[i * 4 + 3] = 255;
  }
  if ($('sathl').checked && satCount > 0) {
    for (let k = 0; k < satCount; k++) {
      const i = m.saturated[k];
      o[i * 4] = 255;
      o[i * 4 + 1] = 0;
      o[i * 4 + 2] = 0;
    }
  }
  frameCanvas.width = w;
  frameCanvas.height = h;
  frameCanvas.getContext('2d').putImageData(out, 0, 0);
  if (state.imgW !== w || state.imgH !== h) {
    state.imgW = w;
    state.imgH = h;
    fit();
  }
  state.frames++;
  $('imginfo').textContent =
    `${kind === 'mip' ? 'stack MIP' : 'plane'} t=${t}${kind === 'plane' ? ` z=${z}` : ''} · ${w}×${h}${level > 0 ? ` (pyramid level ${level})` : ''} · window ${state.lo.toFixed(0)}–${state.hi.toFixed(0)} ADU · ${satCount} saturated · previews ${state.frames}`;
  if ($('auto').checked) {
    $('lo').value = Math.round(state.lo);
    $('hi').value = Math.round(state.hi);
  }
  draw();
}

function fit() {
  const c = $('view');
  c.width = c.clientWidth;
  c.height = c.clientHeight;
  if (!state.imgW) return;
  state.zoom = Math.min(c.width / state.imgW, c.height / state.imgH);
  state.panX = (c.width - state.imgW * state.zoom) / 2;
  state.panY = (c.height - state.imgH * state.zoom) / 2;
  draw();
}

function draw() {
  const c = $('view');
  const g = c.getContext('2d');
  g.setTransform(1, 0, 0, 1, 0, 0);
  g.fillStyle = '#000';
  g.fillRect(0, 0, c.width, c.height);
  g.imageSmoothingEnabled = state.zoom < 2;
  g.setTransform(state.zoom, 0, 0, state.zoom, state.panX, state.panY);
  g.drawImage(frameCanvas, 0, 0);
}

function fillMetadata(md) {
  if (!md) return;
  const f = $('meta');
  for (const [k, v] of Object.entries(md)) if (f.elements[k] && document.activeElement !== f.elements[k]) f.elements[k].value = v ?? '';
}

$('meta').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = {};
  for (const k of ['user', 'project', 'sample', 'notes']) body[k] = f.elements[k].value;
  $('metastate').textContent = 'saving…';
  const r = await fetch('/api/metadata', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  $('metastate').textContent = r.ok ? 'saved' : `error: ${(await r.json()).error}`;
});

const view = $('view');
view.addEventListener(
  'wheel',
  (e) => {
    e.preventDefault();
    const f = e.deltaY < 0 ? 1.2 : 1 / 1.2;
    const r = view.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    state.panX = mx - (mx - state.panX) * f;
    state.panY = my - (my - state.panY) * f;
    state.zoom *= f;
    draw();
  },
  { passive: false },
);
let drag = null;
view.addEventListener('mousedown', (e) => {
  drag = [e.clientX - state.panX, e.clientY - state.panY];
  view.style.cursor = 'grabbing';
});
window.addEventListener('mouseup', () => {
  drag = null;
  view.style.cursor = 'grab';
});
window.addEventListener('mousemove', (e) => {
  if (drag) {
    state.panX = e.clientX - drag[0];
    state.panY = e.clientY - drag[1];
    draw();
  }
});
window.addEventListener('resize', fit);
$('fit').addEventListener('click', fit);
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
$('lut').addEventListener('change', () => volumeView.setLut(lutFor($('lut').value)));
$('render3d').addEventListener('change', () => volumeView.setRender($('render3d').value));
if (params.get('render') === 'alpha') {
  $('render3d').value = 'alpha';
  volumeView.setRender('alpha');
}
setInterval(drawPlots, 1000);
// For debugging in the browser console (and the end-to-end test): the live state.
window.spimstream = state;
connect();
