/**
 * Soak: spimstream (separate process, default config, storage on, one preview client) fed by the
 * simulator at a realistic rate for a few minutes; samples RSS, heap, handles and file descriptors
 * from /metrics and reports their drift. Usage: node dist/bench/soak-bench.js [--seconds 180] [--mbps 150]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { PACKAGE_ROOT } from '../src/package-info.js';
import { machine, table, promMetric } from './bench-util.js';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'spimstream.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null ? r() : p.once('exit', () => r())));

const metric = (text: string, name: string): number => promMetric(text, name) ?? 0;

async function main(): Promise<void> {
  const arg = (n: string, d: string) => {
    const i = process.argv.indexOf(`--${n}`);
    return i >= 0 ? process.argv[i + 1] : d;
  };
  const seconds = Number(arg('seconds', '180'));
  const mbps = Number(arg('mbps', '150'));
  const ring = `/dev/shm/spimstream-soak-${process.pid}`;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spimstream-soak-'));
  const port = 18990;
  const sidecar = spawn(
    process.execPath,
    [BIN, 'run', '--source', `shm:${ring}`, '--out', out, '--port', String(port), '--set', 'storage.min_free_bytes=0'],
    { stdio: 'ignore' },
  );
  const sim = spawn(
    process.execPath,
    [
      BIN,
      'sim',
      '--ring',
      ring,
      '--width',
      '2048',
      '--height',
      '2048',
      '--z-planes',
      '32',
      '--channels',
      '2',
      '--mbps',
      String(mbps),
      '--precomputed',
      '2',
      '--slots',
      '64',
      '--blobs',
      '6400',
    ],
    { stdio: 'ignore' },
  );
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      if (((await (await fetch(`${base}/api/status`)).json()) as { counters: { framesReceived: number } }).counters.framesReceived > 0)
        break;
    } catch {
      /* starting */
    }
    await sleep(100);
  }
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', fps: 5, format: 'jpeg', mip: true })));
  ws.on('error', () => undefined);
  const samples: {
    t: number;
    rss_mb: number;
    heap_mb: number;
    handles: number;
    fds: number;
    frames: number;
    lost: number;
    unstored: number;
  }[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(5000);
    const m = await (await fetch(`${base}/metrics`)).text();
    samples.push({
      t: Math.round((Date.now() - t0) / 1000),
      rss_mb: metric(m, 'process_resident_memory_bytes') / 1e6,
      heap_mb: metric(m, 'nodejs_heap_size_used_bytes') / 1e6,
      handles: metric(m, 'nodejs_active_handles'),
      fds: metric(m, 'process_open_fds'),
      frames: metric(m, 'spimstream_frames_received_total'),
      lost: metric(m, 'spimstream_frames_dropped_total'),
      unstored: metric(m, 'spimstream_frames_unstored_total'),
    });
  }
  ws.close();
  sim.kill('SIGTERM');
  await exited(sim);
  sidecar.kill('SIGTERM');
  await exited(sidecar);
  fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(ring, { force: true });
  const third = Math.max(1, Math.floor(samples.length / 3));
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = samples.slice(0, third);
  const last = samples.slice(-third);
  const drift = (k: 'rss_mb' | 'heap_mb' | 'handles' | 'fds') => avg(last.map((s) => s[k])) - avg(first.map((s) => s[k]));
  process.stdout.write(
    `spimstream soak — ${seconds} s at ${mbps} MB/s (2048x2048, 2 channels), ${JSON.stringify(machine())}\n\n${table(samples.filter((_, i) => i % 3 === 0 || i === samples.length - 1))}\n`,
  );
  process.stdout.write(
    `\n${JSON.stringify({ bench: 'soak', machine: machine(), seconds, mbps, rss_drift_mb: drift('rss_mb'), heap_drift_mb: drift('heap_mb'), handles_drift: drift('handles'), fds_drift: drift('fds'), frames: samples.at(-1)?.frames, lost: samples.at(-1)?.lost, unstored: samples.at(-1)?.unstored })}\n`,
  );
}

void main();
