/**
 * Ingest under load: 2048² uint16 at 12 fps (100 MB/s) from a separate simulator process into a
 * sidecar process (default config, storing), with one CPU hog at the same priority beside them,
 * for rings that hold 0.25 and 1 s of frames; then the same with headless Chromium opening the
 * live page and closing it again every 2 s (the load that overran the ring of the main-thread reader). Reports overruns per depth, the smallest depth
 * with none, the read lag (producer's write → ingest copy, p99 from the histogram) and the longest
 * pause between two ring polls. Drives the CLI only, so `--root DIR` runs another checkout's build
 * side by side (before/after; an older build has no ingest metrics: those cells read n/a).
 * Usage: node dist/bench/ingest-bench.js [--quick] [--seconds 20] [--root DIR] [--out DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { PACKAGE_ROOT } from '../src/package-info.js';
import { machine, promMetric, table } from './bench-util.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hog(): ChildProcess {
  const hasStress = spawnSync('sh', ['-c', 'command -v stress-ng'], { encoding: 'utf8' }).status === 0;
  return hasStress
    ? spawn('stress-ng', ['--cpu', '1', '--quiet'], { stdio: 'ignore' })
    : spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
}

const metric = promMetric;

/** Upper bound (ms) of the histogram bucket holding quantile q, or null when the histogram is absent. */
function histogramQuantileMs(text: string, name: string, q: number): number | null {
  const buckets: [number, number][] = [];
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\S+)$`).exec(line);
    if (m) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  if (buckets.length === 0) return null;
  const total = buckets[buckets.length - 1][1];
  if (total === 0) return null;
  const hit = buckets.find(([, n]) => n >= q * total);
  return hit ? hit[0] * 1000 : null;
}

export interface IngestStep {
  load: string;
  ring_s: number;
  slots: number;
  frames: number;
  received: number;
  overrun: number;
  torn: number;
  unstored: number;
  read_lag_p99_ms: number | null;
  poll_gap_max_ms: number | null;
}

/** Opens the live page in a fresh headless Chromium and closes it again, until stopped. */
async function browserChurn(port: number, running: () => boolean): Promise<void> {
  while (running()) {
    let browser: Browser | null = null;
    try {
      browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      });
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      await sleep(1500);
    } catch {
      /* a slow launch under load: try again */
    } finally {
      await browser?.close().catch(() => undefined);
    }
    await sleep(500);
  }
}

async function step(root: string, out: string, seconds: number, depthS: number, withBrowser: boolean, quick: boolean): Promise<IngestStep> {
  const size = quick ? 512 : 2048;
  const fps = quick ? 48 : 12; // 100 MB/s at 2048²; 25 MB/s in the smoke run
  const slots = Math.max(2, Math.round(depthS * fps));
  const frames = Math.round(seconds * fps);
  const ring = `/dev/shm/spimstream-ingestbench-${process.pid}-${slots}`;
  const dir = fs.mkdtempSync(path.join(out, 'spimstream-ingestbench-'));
  const bin = path.join(root, 'bin', 'spimstream.js');
  const side = spawn(process.execPath, [bin, 'run', '--source', `shm:${ring}`, '--out', dir, '--port', '0', '--json-logs'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  side.stdout?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  side.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const h = hog();
  let sim: ChildProcess | null = null;
  try {
    let port = 0;
    for (const until = Date.now() + 30_000; !port; await sleep(50)) {
      const m = /listening on http:\/\/[^:]+:(\d+)\//.exec(log);
      if (m) port = Number(m[1]);
      if (Date.now() > until) throw new Error(`sidecar did not start: ${log}`);
    }
    const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // Pre-rendered frames: the simulator publishes at the rate from the first frame (and the sidecar attaches meanwhile).
    sim = spawn(
      process.execPath,
      [
        bin,
        'sim',
        '--ring',
        ring,
        '--width',
        String(size),
        '--height',
        String(size),
        '--z-planes',
        '10',
        '--channels',
        '1',
        '--fps',
        String(fps),
        '--slots',
        String(slots),
        '--frames',
        String(frames),
        '--precomputed',
        '4',
        '--unlink',
      ],
      { stdio: 'ignore' },
    );
    const simExit = new Promise((r) => sim?.once('exit', r));
    let churning = withBrowser;
    const churn = withBrowser ? browserChurn(port, () => churning) : Promise.resolve();
    let gapMax: number | null = null;
    let text = '';
    let done = false;
    void simExit.then(() => {
      done = true;
    });
    while (!done) {
      await sleep(1000);
      text = await scrape();
      const g = metric(text, 'spimstream_ingest_poll_gap_max_seconds');
      if (g !== null) gapMax = Math.max(gapMax ?? 0, g * 1000);
    }
    churning = false;
    await churn;
    const accounted = () =>
      (metric(text, 'spimstream_frames_received_total') ?? 0) + (metric(text, 'spimstream_frames_dropped_total') ?? 0);
    for (const until = Date.now() + 20_000; accounted() < frames && Date.now() < until; await sleep(200)) text = await scrape();
    return {
      load: withBrowser ? 'CPU hog + Chromium' : 'CPU hog',
      ring_s: depthS,
      slots,
      frames,
      received: metric(text, 'spimstream_frames_received_total') ?? 0,
      overrun: metric(text, 'spimstream_frames_dropped_total', /reason="overrun"/) ?? 0,
      torn: metric(text, 'spimstream_frames_dropped_total', /reason="torn"/) ?? 0,
      unstored: metric(text, 'spimstream_frames_unstored_total') ?? 0,
      read_lag_p99_ms: histogramQuantileMs(text, 'spimstream_ingest_read_lag_seconds', 0.99),
      poll_gap_max_ms: gapMax,
    };
  } finally {
    sim?.kill('SIGTERM');
    h.kill('SIGKILL');
    const exited = new Promise((r) => side.once('exit', r));
    side.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(ring, { force: true });
  }
}

export async function ingestBench(
  quick: boolean,
  seconds: number,
  root: string,
  out: string,
): Promise<{ steps: IngestStep[]; min_ring_s: number | null }> {
  const steps: IngestStep[] = [];
  for (const b of quick ? [false] : [false, true]) {
    for (const d of quick ? [0.5] : [0.25, 1]) steps.push(await step(root, out, seconds, d, b, quick));
  }
  const ok = steps
    .filter((s) => s.overrun + s.torn === 0 && steps.every((o) => o.ring_s !== s.ring_s || o.overrun + o.torn === 0))
    .map((s) => s.ring_s);
  return { steps, min_ring_s: ok.length ? Math.min(...ok) : null };
}

export function ingestRows(steps: IngestStep[]): Record<string, string | number>[] {
  const na = (v: number | null) => (v === null ? 'n/a' : v);
  return steps.map((s) => ({
    load: s.load,
    'ring s': s.ring_s,
    slots: s.slots,
    frames: s.frames,
    received: s.received,
    overrun: s.overrun,
    torn: s.torn,
    unstored: s.unstored,
    'read lag p99 ms (≤)': na(s.read_lag_p99_ms),
    'poll gap max ms': na(s.poll_gap_max_ms),
  }));
}

async function main(): Promise<void> {
  const arg = (n: string): string | undefined => {
    const i = process.argv.indexOf(`--${n}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const quick = process.argv.includes('--quick');
  const root = path.resolve(arg('root') ?? PACKAGE_ROOT);
  const r = await ingestBench(quick, Number(arg('seconds') ?? (quick ? 3 : 20)), root, arg('out') ?? os.tmpdir());
  process.stdout.write(
    `spimstream ingest bench (${root}) — 100 MB/s, one CPU hog (and Chromium) — ${JSON.stringify(machine())}\n\n${table(ingestRows(r.steps))}\n\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ bench: 'ingest', root, machine: machine(), min_ring_s_zero_overrun: r.min_ring_s, steps: r.steps })}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
