/**
 * Time to notify: from a fault injected in the simulator to the webhook receiver having the
 * notification, through a real Prometheus and Alertmanager on the generated rules and config.
 * Each round injects the fault, waits for the notification, clears the fault and waits for the
 * resolved one. The time is split into spimstream's share (injection → the sidecar's own verdict:
 * its alert, or the first stack or loss past the threshold), Prometheus' (→ the rule firing: scrape,
 * evaluation, `for:`) and Alertmanager's (→ the receiver: group_wait, sending).
 *
 * Storage stopped and offload stalled are real faults on a tmpfs of their own each: the store's
 * disk filled up by one file and freed again, the destination's remounted read-only and back
 * (mounting needs root; without it those rows say so).
 *
 * node dist/bench/notify-bench.js [--rounds 10] [--interval 1] [--for 2|generated] [--group-wait 1] [--stall 5] [--doc]
 * (--doc adds its table to docs/performance.json and renders docs/performance.md again)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp } from '../src/app.js';
import { buildConfig } from '../src/config/config.js';
import type { PipelineEvents } from '../src/pipeline/events.js';
import { type AlertStack, startAlertStack, startReceiver } from './alert-stack.js';
import { machine, pct, table } from './bench-util.js';
import { addSection } from './perf-doc.js';
import { PACKAGE_ROOT } from '../src/package-info.js';

interface Kind {
  name: string;
  rule: string;
  /** A simulator fault (POST /api/sim), or a disk made full or read-only, and mended again. */
  fault: Record<string, unknown> | { disk: Disk; how: 'full' | 'read-only' };
  /** The sidecar's verdict, from its events. */
  verdict: (ev: { name: keyof PipelineEvents; e: unknown }, threshold: { sat: number }) => boolean;
}

const KINDS: Kind[] = [
  {
    name: 'focus_lost',
    rule: 'SpimstreamFocusLost',
    fault: { defocus_px: 4 },
    verdict: ({ name, e }) =>
      name === 'alert' && (e as PipelineEvents['alert']).name === 'focus_lost' && (e as PipelineEvents['alert']).active,
  },
  {
    name: 'saturation',
    rule: 'SpimstreamSaturation',
    fault: { saturate: 1 },
    verdict: ({ name, e }, th) => name === 'stack-qc' && (e as PipelineEvents['stack-qc']).qc.maxSaturatedRatio > th.sat,
  },
  {
    name: 'drift',
    rule: 'SpimstreamDrift',
    fault: { shift_px: [8, 0] }, // a bumped stage: 8 px = 3.2 µm at 0.406 µm
    verdict: ({ name, e }) => name === 'alert' && (e as PipelineEvents['alert']).name === 'drift' && (e as PipelineEvents['alert']).active,
  },
  {
    name: 'frames lost',
    rule: 'SpimstreamFramesDropped',
    fault: { gap_every: 50 },
    verdict: ({ name }) => name === 'frames-lost',
  },
  {
    name: 'storage stopped',
    rule: 'SpimstreamStorageFailed',
    fault: { disk: 'store', how: 'full' },
    verdict: ({ name }) => name === 'storage-error',
  },
  {
    name: 'offload stalled',
    rule: 'SpimstreamOffloadStalled',
    fault: { disk: 'destination', how: 'read-only' },
    verdict: ({ name, e }) =>
      name === 'alert' && (e as PipelineEvents['alert']).name === 'offload_stalled' && (e as PipelineEvents['alert']).active,
  },
];

type Disk = 'store' | 'destination';

/** A tmpfs of its own, so that filling it touches nothing else (tmpfs takes RAM only for what is written). */
function mountTmpfs(dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
}

/**
 * Full: one file takes every free byte (ENOSPC at the next write); removed, the space is back.
 * Read-only: remounted (retried while a file is open for writing there), then read-write again.
 */
async function diskFault(dir: string, how: 'full' | 'read-only', on: boolean): Promise<void> {
  const file = path.join(dir, 'filler');
  if (how === 'full' && on) {
    const st = fs.statfsSync(dir);
    execFileSync('fallocate', ['-l', String(st.bavail * st.bsize), file]);
  } else if (how === 'full') fs.rmSync(file, { force: true });
  else
    await until(() => spawnSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, dir]).status === 0, 30_000, `remount ${on ? 'ro' : 'rw'}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function main(): Promise<void> {
  const arg = (n: string, d: string) => {
    const i = process.argv.indexOf(`--${n}`);
    return i >= 0 ? (process.argv[i + 1] ?? d) : d;
  };
  const rounds = Number(arg('rounds', '10'));
  const intervalS = Number(arg('interval', '1'));
  const forArg = arg('for', '2');
  const groupWait = Number(arg('group-wait', '1'));
  const stallS = Number(arg('stall', '5'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spimstream-notify-'));
  const mounts: Record<Disk, string> = { store: path.join(dir, 'store'), destination: path.join(dir, 'destination') };
  const root = process.getuid?.() === 0;
  // The destination keeps what is offloaded (a few MB/s; tmpfs takes RAM only for what is written).
  if (root) for (const [d, m] of Object.entries(mounts)) mountTmpfs(m, d === 'store' ? '1g' : '6g');
  const receiver = await startReceiver();
  const cfg = buildConfig(
    {
      source: 'sim',
      server: { port: 0 },
      log: { level: 'error' },
      storage: root
        ? { out: path.join(mounts.store, 'data'), chunk: [8, 128, 128], shard: [8, 256, 256], min_free_bytes: 16e6 }
        : { enabled: false },
      qc: { thresholds: { disk_free_bytes: 1e8 } }, // the 1 GB tmpfs is not "low" until filled
      offload: root ? { destination: path.join(mounts.destination, 'data'), delete_local: true, stall_seconds: stallS } : {},
      camera: { name: 'scope1' },
      sim: { width: 256, height: 256, z_planes: 8, channels: 1, fps: 80, blobs: 100 },
      alerting: { webhook_url: receiver.hook, group_wait_s: groupWait, group_interval_s: Math.max(1, groupWait), repeat_interval_h: 1 },
    },
    {},
  );
  const app = await startApp(cfg, { overwrite: false, append: false, logTo: fs.createWriteStream(path.join(dir, 'sidecar.log')) });
  const events: { name: keyof PipelineEvents; e: unknown; at: number }[] = [];
  for (const name of ['alert', 'stack-qc', 'frames-lost', 'storage-error'] as const)
    app.bus.on(name, (e) => events.push({ name, e, at: Date.now() }));
  let stack: AlertStack | null = null;
  const rows: Record<string, string | number>[] = [];
  const summary: Record<string, { p50_s: number; max_s: number }> = {};
  try {
    stack = await startAlertStack(dir, cfg, [`127.0.0.1:${app.port}`], {
      forSeconds: forArg === 'generated' ? null : Number(forArg),
      intervalS,
    });
    const post = async (faults: Record<string, unknown>) => {
      if ('disk' in faults) return diskFault(mounts[faults.disk as Disk], faults.how as 'full' | 'read-only', true);
      const r = await fetch(`http://127.0.0.1:${app.port}/api/sim`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(faults),
      });
      if (!r.ok) throw new Error(`POST /api/sim: ${r.status} ${await r.text()}`);
    };
    await until(() => events.filter((x) => x.name === 'stack-qc').length >= 12, 60_000, 'a QC baseline');
    for (const kind of KINDS) {
      if ('disk' in kind.fault && !root) {
        rows.push({ alert: kind.name, rounds: 0, 'p50 s': 'not run: mounting a tmpfs to fill needs root' });
        continue;
      }
      const total: number[] = [];
      const shares = { spimstream: [] as number[], prometheus: [] as number[], alertmanager: [] as number[] };
      for (let r = 0; r < rounds; r++) {
        const seen = receiver.got.length;
        const from = events.length;
        const t0 = Date.now();
        await post(kind.fault);
        const notified = () =>
          receiver.got
            .slice(seen)
            .find((n) => n.status === 'firing' && n.alerts.some((a) => a.labels.alertname === kind.rule && a.status === 'firing'));
        await until(() => notified() !== undefined, 300_000, `the ${kind.name} notification`);
        const n = notified();
        const t3 = n?.receivedAt ?? Date.now();
        // Prometheus sends a firing alert with startsAt = when it fired (after its for:).
        const startsAt = Date.parse(n?.alerts.find((a) => a.labels.alertname === kind.rule)?.startsAt ?? '');
        const t1 = Math.min(t3, events.slice(from).find((x) => kind.verdict(x, { sat: cfg.qc.thresholds.saturated_ratio }))?.at ?? t3);
        const t2 = Math.min(t3, Math.max(t1, startsAt));
        total.push((t3 - t0) / 1000);
        shares.spimstream.push((t1 - t0) / 1000);
        shares.prometheus.push((t2 - t1) / 1000);
        shares.alertmanager.push((t3 - t2) / 1000);
        // Clear, and wait until it is resolved everywhere before the next round.
        const resolvedFrom = receiver.got.length;
        if ('disk' in kind.fault) await diskFault(mounts[kind.fault.disk as Disk], kind.fault.how as 'full' | 'read-only', false);
        await post({});
        await until(
          () =>
            receiver.got.slice(resolvedFrom).some((n) => n.status === 'resolved' && n.alerts.some((a) => a.labels.alertname === kind.rule)),
          300_000,
          `the ${kind.name} resolved notification`,
        );
        process.stderr.write(
          `${kind.name} round ${r + 1}: ${((t3 - t0) / 1000).toFixed(1)} s (verdict ${t1 - t0} ms, startsAt ${startsAt - t0} ms, received ${t3 - t0} ms)\n`,
        );
      }
      summary[kind.name] = { p50_s: pct(total, 0.5), max_s: Math.max(...total) };
      rows.push({
        alert: kind.name,
        rounds,
        'p50 s': pct(total, 0.5),
        'max s': Math.max(...total),
        'spimstream p50 s': pct(shares.spimstream, 0.5),
        'Prometheus p50 s': pct(shares.prometheus, 0.5),
        'Alertmanager p50 s': pct(shares.alertmanager, 0.5),
      });
    }
  } finally {
    await stack?.stop();
    await app.stop();
    await receiver.close();
    if (root) for (const m of Object.values(mounts)) spawnSync('umount', ['-l', m]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const title = `Time to notify (scrape and evaluation every ${intervalS} s, rule for: ${forArg === 'generated' ? 'as generated' : `${forArg} s`}, group_wait ${groupWait} s, offload.stall_seconds ${stallS})`;
  out(`## ${title}\n\n${table(rows)}\n`);
  if (process.argv.includes('--doc')) addSection(path.join(PACKAGE_ROOT, 'docs'), { title, body: table(rows) }, 'Time to notify');
  out(
    JSON.stringify({
      bench: 'notify',
      machine: machine(),
      interval_s: intervalS,
      for: forArg,
      group_wait_s: groupWait,
      stall_s: stallS,
      rounds,
      summary,
    }),
  );
}

void main().catch((e: unknown) => {
  process.stderr.write(`notify-bench: ${(e as Error).message}\n`);
  process.exit(1);
});
