/**
 * End-to-end sustained throughput: the simulator as a separate process writing the ring at a set
 * rate, spimstream (separate process) with the default config (full QC, default codec, Zarr on disk),
 * one preview client connected and /metrics scraped every second. Steps the rate up until frames are
 * lost; reports per step input MB/s, losses, latencies, CPU per GB, RSS peak, bytes written, ratio.
 * Usage: node dist/bench/throughput-bench.js [--quick] [--rates 100,200,300] [--seconds 20] [--size 2048] [--out DIR] [--volume]
 * (--volume: the preview client also takes the live volume of each stack, as the page's 3-D view does)
 * (--out: where the Zarr stores go, e.g. the acquisition disk; default the system temp directory)
 * (--ring-dir: where the ring file goes, default /dev/shm; e.g. a tmpfs mounted with huge=always, to
 * measure what huge pages save the ingest thread's copy out of the ring)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { PACKAGE_ROOT } from '../src/package-info.js';
import { decodePreview } from '../src/server/preview-protocol.js';
import { decodeVolume } from '../src/server/volume-protocol.js';
import { machine, pct, table } from './bench-util.js';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'spimstream.js');
/** In `extra`: the preview client also subscribes to the live volume (the 3-D view); not a sidecar flag. */
export const VOLUME_CLIENT = '--volume-client';

export interface StepResult {
  target_mb_s: number;
  input_mb_s: number;
  frames: number;
  lost_overrun: number;
  lost_gap: number;
  unstored: number;
  /** Frames whose focus/drift were skipped (and histogram taken from every 4th row): workers behind. */
  qc_sampled: number;
  store_p50_ms: number;
  store_p99_ms: number;
  qc_p99_ms: number;
  preview_p50_ms: number;
  preview_p99_ms: number;
  previews: number;
  /** With a 3-D client (--volume): volumes received, bytes each, newest plane -> client latency. */
  volumes: number;
  volume_bytes: number;
  volume_p50_ms: number;
  volume_p99_ms: number;
  cpu_s_per_gb: number;
  /** The same over the window's last two thirds (without start-up's one-off costs). */
  cpu_s_per_gb_steady: number;
  rss_peak_mb: number;
  written_mb: number;
  ratio: number;
  unstored_reasons: Record<string, number>;
  qc_sampled_reasons: Record<string, number>;
  /** Worker seconds of the pyramid's reduce jobs per level (level 1's first 2x2 step rides in the frame tasks). */
  pyramid_s: Record<string, number>;
  /** The sidecar's CPU seconds per raw GB by thread kind (spimstream_thread_cpu_seconds_total). */
  cpu_s_per_gb_by_thread: Record<string, number>;
}

function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), (m.get(line.slice(0, i)) ?? 0) + Number(line.slice(i + 1)));
  }
  return m;
}

function sum(m: Map<string, number>, prefix: string, filter = ''): number {
  let s = 0;
  for (const [k, v] of m) if ((k === prefix || k.startsWith(`${prefix}{`)) && k.includes(filter)) s += v;
  return s;
}

/** Quantile from a Prometheus histogram's cumulative buckets (linear inside the bucket). */
function histQuantile(m: Map<string, number>, name: string, q: number): number {
  const buckets: [number, number][] = [];
  for (const [k, v] of m) {
    const r = new RegExp(`^${name}_bucket\\{le="([^"]+)"`).exec(k);
    if (r) buckets.push([r[1] === '+Inf' ? Infinity : Number(r[1]), v]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return 0;
  const rank = q * total;
  let prevLe = 0;
  let prevC = 0;
  for (const [le, c] of buckets) {
    if (c >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevC)) / Math.max(1, c - prevC);
    }
    prevLe = le;
    prevC = c;
  }
  return prevLe;
}

function cpuSeconds(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null ? r() : p.once('exit', () => r())));

/** `extra`: more sidecar arguments (e.g. `--set storage.levels=auto`) for side-by-side configs. */
export async function runStep(
  rate: number,
  seconds: number,
  size: number,
  port: number,
  outDir = os.tmpdir(),
  extra: string[] = [],
  ringDir = '/dev/shm',
): Promise<StepResult> {
  const ring = path.join(ringDir, `spimstream-bench-${process.pid}-${rate}`);
  fs.mkdirSync(outDir, { recursive: true });
  const out = fs.mkdtempSync(path.join(outDir, 'spimstream-bench-'));
  const frameBytes = size * size * 2;
  const zPlanes = 32;
  const sidecar = spawn(
    process.execPath,
    [
      BIN,
      'run',
      '--source',
      `shm:${ring}`,
      '--out',
      out,
      '--port',
      String(port),
      '--json-logs',
      ...extra.filter((x) => x !== VOLUME_CLIENT),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  sidecar.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const sim = spawn(
    process.execPath,
    [
      BIN,
      'sim',
      '--ring',
      ring,
      '--width',
      String(size),
      '--height',
      String(size),
      '--z-planes',
      String(zPlanes),
      '--channels',
      '1',
      '--mbps',
      String(rate),
      '--precomputed',
      '2',
      '--slots',
      String(Math.max(16, Math.floor((512 * 2 ** 20) / frameBytes))),
      '--blobs',
      String(Math.round((400 * size * size) / (512 * 512))),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  sim.stderr?.resume();
  const base = `http://127.0.0.1:${port}`;
  // wait for the acquisition to start (the simulator pre-renders its frames first)
  for (let i = 0; i < 600; i++) {
    try {
      const s = (await (await fetch(`${base}/api/status`)).json()) as { counters: { framesReceived: number } };
      if (s.counters.framesReceived > 0) break;
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  const previewLat: number[] = [];
  const volumeLat: number[] = [];
  let volumeBytes = 0;
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
  ws.on('message', (d: Buffer, bin: boolean) => {
    if (!bin) {
      // The first stream the sidecar announces (an external ring without config names them ch0…).
      const m = JSON.parse(d.toString()) as { type: string; streams?: { id: string }[] };
      const stream = m.streams?.[0]?.id;
      if (m.type === 'hello' && stream)
        ws.send(JSON.stringify({ type: 'subscribe', stream, fps: 5, format: 'jpeg', volume: extra.includes(VOLUME_CLIENT) }));
    } else if (d.subarray(0, 4).toString() === 'SPVL') {
      volumeLat.push(Date.now() - decodeVolume(new Uint8Array(d)).timestampMs);
      volumeBytes += d.byteLength;
    } else previewLat.push(Date.now() - decodePreview(new Uint8Array(d)).timestampMs);
  });
  ws.on('error', () => undefined);
  await sleep(1000); // settle
  const m0 = parseMetrics(await (await fetch(`${base}/metrics`)).text());
  const cpu0 = cpuSeconds(sidecar.pid!);
  const t0 = performance.now();
  let rssPeak = 0;
  // The last two thirds of the window again: the first seconds hold one-off costs (first touch of
  // the z-block pool and output slab, JIT), which a day-long run pays once.
  let mid: { cpu: number; bytes: number } | null = null;
  while (performance.now() - t0 < seconds * 1000) {
    await sleep(1000);
    const m = parseMetrics(await (await fetch(`${base}/metrics`)).text());
    rssPeak = Math.max(rssPeak, sum(m, 'process_resident_memory_bytes'));
    if (!mid && performance.now() - t0 >= (seconds * 1000) / 3)
      mid = { cpu: cpuSeconds(sidecar.pid!), bytes: sum(m, 'spimstream_bytes_received_total') };
  }
  const m1 = parseMetrics(await (await fetch(`${base}/metrics`)).text());
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(sidecar.pid!);
  ws.close();
  sim.kill('SIGTERM');
  await exited(sim);
  sidecar.kill('SIGTERM');
  await exited(sidecar);
  const lines = log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const fin = lines.find((l) => l.msg === 'acquisition finished') as Record<string, number | string> | undefined;
  fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(ring, { force: true });
  fs.rmSync(`${ring}.seen`, { force: true });
  const d = (name: string, filter = '') => sum(m1, name, filter) - sum(m0, name, filter);
  // By reason from /metrics, over the same window as the total (the log's summaries lag by seconds).
  const byReason = (metric: string): Record<string, number> => {
    const reasons: Record<string, number> = {};
    for (const k of m1.keys()) {
      const reason = new RegExp(`^${metric}\\{.*reason="([^"]+)"`).exec(k)?.[1];
      if (reason && !(reason in reasons)) {
        const n = d(metric, `reason="${reason}"`);
        if (n > 0) reasons[reason] = n;
      }
    }
    return reasons;
  };
  const bytesIn = d('spimstream_bytes_received_total');
  const bytesTotal = sum(m1, 'spimstream_bytes_received_total');
  const pyramid: Record<string, number> = {};
  for (const k of m1.keys()) {
    const lv = /^spimstream_pyramid_seconds_total\{.*level="(\d+)"/.exec(k)?.[1];
    if (lv) pyramid[lv] = d('spimstream_pyramid_seconds_total', `level="${lv}"`);
  }
  const sorted = [...previewLat].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  return {
    target_mb_s: rate,
    input_mb_s: bytesIn / 1e6 / elapsed,
    frames: d('spimstream_frames_received_total'),
    lost_overrun: d('spimstream_frames_dropped_total', 'overrun'),
    lost_gap: d('spimstream_frames_dropped_total', 'gap'),
    unstored: d('spimstream_frames_unstored_total'),
    qc_sampled: d('spimstream_qc_sampled_total'),
    store_p50_ms: histQuantile(m1, 'spimstream_store_latency_seconds', 0.5) * 1000,
    store_p99_ms: histQuantile(m1, 'spimstream_store_latency_seconds', 0.99) * 1000,
    qc_p99_ms: histQuantile(m1, 'spimstream_frame_latency_seconds', 0.99) * 1000,
    preview_p50_ms: q(0.5),
    preview_p99_ms: q(0.99),
    previews: previewLat.length,
    volumes: volumeLat.length,
    volume_bytes: volumeLat.length > 0 ? volumeBytes / volumeLat.length : 0,
    volume_p50_ms: pct(volumeLat, 0.5),
    volume_p99_ms: pct(volumeLat, 0.99),
    cpu_s_per_gb: bytesIn > 0 ? (cpu1 - cpu0) / (bytesIn / 1e9) : 0,
    cpu_s_per_gb_steady: mid && bytesTotal > mid.bytes ? (cpu1 - mid.cpu) / ((bytesTotal - mid.bytes) / 1e9) : 0,
    rss_peak_mb: rssPeak / 1e6,
    written_mb: Number(fin?.bytes_written ?? 0) / 1e6,
    ratio: Number(fin?.compression_ratio ?? 0),
    unstored_reasons: byReason('spimstream_frames_unstored_total'),
    qc_sampled_reasons: byReason('spimstream_qc_sampled_total'),
    pyramid_s: pyramid,
    cpu_s_per_gb_by_thread: Object.fromEntries(
      ['main', 'ingest', 'worker', 'preview', 'other'].map((k) => [
        k,
        bytesIn > 0 ? d('spimstream_thread_cpu_seconds_total', `kind="${k}"`) / (bytesIn / 1e9) : 0,
      ]),
    ),
  };
}

/**
 * Cores an acquisition PC needs per camera rate, from one clean step's CPU per GB by thread kind:
 * the workers scale with cores; the ingest and main threads are one thread each, so their own
 * seconds per GB cap the rate whatever the core count (1 / s-per-GB GB/s).
 */
export function scalingModel(
  step: StepResult,
  rates = [300, 600, 1600],
): { rows: Record<string, string | number>[]; summary: Record<string, number> } {
  const k = step.cpu_s_per_gb_by_thread;
  const total = Object.values(k).reduce((a, b) => a + b, 0);
  const rows = rates.map((r) => ({
    'camera MB/s': r,
    'cores (sidecar)': (total * r) / 1000,
    'of which workers': ((k.worker ?? 0) * r) / 1000,
    'ingest thread busy': `${(((k.ingest ?? 0) * r) / 10).toFixed(0)}%`,
    'main thread busy': `${(((k.main ?? 0) * r) / 10).toFixed(0)}%`,
  }));
  const ceil = (s: number) => (s > 0 ? 1 / s : Infinity);
  return {
    rows,
    summary: {
      measured_at_mb_s: step.input_mb_s,
      cpu_s_per_gb_total: total,
      ingest_thread_ceiling_gb_s: ceil(k.ingest ?? 0),
      main_thread_ceiling_gb_s: ceil(k.main ?? 0),
      cores_for_1600_mb_s: (total * 1600) / 1000,
    },
  };
}

export async function throughput(
  rates: number[],
  seconds: number,
  size: number,
  outDir = os.tmpdir(),
  extra: string[] = [],
  ringDir = '/dev/shm',
): Promise<{ steps: StepResult[]; max: number }> {
  const steps: StepResult[] = [];
  let max = 0;
  for (const r of rates) {
    const s = await runStep(r, seconds, size, 18900 + steps.length, outDir, extra, ringDir);
    steps.push(s);
    process.stderr.write(
      `step ${r} MB/s: input ${s.input_mb_s.toFixed(0)} MB/s, lost ${s.lost_overrun + s.lost_gap}, unstored ${s.unstored} ${JSON.stringify(s.unstored_reasons)}\n`,
    );
    const clean = s.lost_overrun === 0 && s.lost_gap === 0 && s.unstored === 0 && s.input_mb_s > 0.9 * r;
    if (!clean) break;
    max = s.input_mb_s;
  }
  return { steps, max };
}

async function main(): Promise<void> {
  const arg = (n: string, d: string) => {
    const i = process.argv.indexOf(`--${n}`);
    return i >= 0 ? process.argv[i + 1] : d;
  };
  const quick = process.argv.includes('--quick');
  const rates = arg('rates', quick ? '20' : '100,200,300,400,450,500,550,600')
    .split(',')
    .map(Number);
  const { steps, max } = await throughput(
    rates,
    Number(arg('seconds', quick ? '3' : '20')),
    Number(arg('size', quick ? '512' : '2048')),
    arg('out', os.tmpdir()),
    process.argv.includes('--volume') ? [VOLUME_CLIENT] : [],
    arg('ring-dir', '/dev/shm'),
  );
  process.stdout.write(
    `spimstream sustained throughput — ${JSON.stringify(machine())}\n\n${table(
      steps.map((s) => ({
        'target MB/s': s.target_mb_s,
        'input MB/s': s.input_mb_s,
        frames: s.frames,
        overrun: s.lost_overrun,
        gap: s.lost_gap,
        unstored: s.unstored,
        'QC sampled': s.qc_sampled,
        'store p50 ms': s.store_p50_ms,
        'store p99 ms': s.store_p99_ms,
        'QC p99 ms': s.qc_p99_ms,
        'preview p50 ms': s.preview_p50_ms,
        'preview p99 ms': s.preview_p99_ms,
        'CPU s/GB': s.cpu_s_per_gb,
        'last 2/3': s.cpu_s_per_gb_steady,
        'RSS peak MB': s.rss_peak_mb,
        'written MB': s.written_mb,
        ratio: s.ratio,
      })),
    )}\n`,
  );
  const best = steps.filter((s) => s.input_mb_s <= max + 1e-9 && s.lost_overrun + s.lost_gap + s.unstored === 0).at(-1);
  const model = best ? scalingModel(best) : null;
  if (best && model) {
    process.stdout.write(
      `\nCPU s per raw GB by thread at ${best.input_mb_s.toFixed(0)} MB/s: ${JSON.stringify(best.cpu_s_per_gb_by_thread)}\n\n${table(model.rows)}\n`,
    );
  }
  process.stdout.write(
    `\n${JSON.stringify({
      bench: 'throughput',
      machine: machine(),
      max_sustained_mb_s: max,
      per_core_mb_s: max / os.availableParallelism(),
      ratio: best?.ratio ?? 0,
      p99_latency_ms: best?.store_p99_ms ?? 0,
      preview_p99_ms: best?.preview_p99_ms ?? 0,
      rss_peak_mb: best?.rss_peak_mb ?? 0,
      cpu_s_per_gb: best?.cpu_s_per_gb ?? 0,
      cpu_s_per_gb_by_thread: best?.cpu_s_per_gb_by_thread ?? {},
      scaling: model?.summary ?? null,
      steps,
    })}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
