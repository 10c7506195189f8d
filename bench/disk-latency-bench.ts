/**
 * How long a frame waits before it is durable on disk, and what durability costs.
 * 1. fsync cost: shards of 16 MiB written temp -> rename (no sync) against temp -> fdatasync ->
 *    rename -> fsync(dir), on the output disk.
 * 2. Receipt -> on disk: the sidecar in-process on the built-in simulator (512², 16-plane stacks),
 *    each frame's receipt time against the moment its shard is renamed into place (fdatasync'ed), per
 *    step: idle machine, then with a CPU hog on every core. p50 / p99 / max.
 * Usage: node dist/bench/disk-latency-bench.js [--quick] [--out DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { buildConfig } from '../src/config/config.js';
import { startApp } from '../src/app.js';
import { syncDir } from '../src/zarr/dir-sync.js';
import { machine, table } from './bench-util.js';

function quantile(v: number[], q: number): number {
  if (v.length === 0) return 0;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function fsyncCost(dir: string, n: number): Promise<{ plain_ms: number; durable_ms: number }> {
  const buf = Buffer.alloc(16 << 20, 7);
  const run = async (durable: boolean) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const tmp = path.join(dir, `.tmp-${i}`);
      const fd = fs.openSync(tmp, 'w');
      fs.writeSync(fd, buf);
      if (durable) fs.fdatasyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, path.join(dir, `shard-${durable ? 'd' : 'p'}-${i}`));
      if (durable) await syncDir(dir);
    }
    return (performance.now() - t0) / n;
  };
  const plain = await run(false);
  const durable = await run(true);
  return { plain_ms: plain, durable_ms: durable };
}

async function latencyStep(out: string, seconds: number, hog: boolean): Promise<Record<string, number | string>> {
  const hogs: ChildProcess[] = hog
    ? Array.from({ length: os.availableParallelism() }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }))
    : [];
  const fps = 100;
  const cfg = buildConfig(
    {
      server: { port: 0 },
      log: { level: 'error' },
      source: 'sim',
      storage: { out },
      sim: { width: 512, height: 512, z_planes: 16, channels: 1, fps, timepoints: Math.max(2, Math.round((seconds * fps) / 16)) },
    },
    {},
  );
  const app = await startApp(cfg, { overwrite: false, append: false });
  const received = new Map<string, number>();
  const lat: number[] = [];
  const shardZ = cfg.storage.shard[0] || Number.MAX_SAFE_INTEGER;
  app.bus.on('frame-received', (e) => received.set(`${e.meta.t}/${e.meta.c}/${e.meta.z}`, performance.now()));
  app.bus.on('shard-written', (e) => {
    const now = performance.now();
    const m = /\/c\/(\d+)\/(\d+)\/(\d+)\/\d+\/\d+$/.exec(e.path);
    if (!m) return;
    const [t, c, zs] = [Number(m[1]), Number(m[2]), Number(m[3])];
    for (const [k, at] of received) {
      const [kt, kc, kz] = k.split('/').map(Number);
      if (kt === t && kc === c && Math.floor(kz / shardZ) === zs) {
        lat.push(now - at);
        received.delete(k);
      }
    }
  });
  try {
    await new Promise<void>((resolve) => app.bus.on('acquisition-finished', () => resolve()));
  } finally {
    await app.stop();
    for (const h of hogs) h.kill('SIGKILL');
  }
  return {
    step: hog ? `CPU hog on all ${os.availableParallelism()} cores` : 'idle machine',
    'MB/s': (fps * 512 * 512 * 2) / 1e6,
    frames: lat.length,
    'not on disk': received.size,
    'p50 ms': Number(quantile(lat, 0.5).toFixed(0)),
    'p99 ms': Number(quantile(lat, 0.99).toFixed(0)),
    'max ms': Number(Math.max(0, ...lat).toFixed(0)),
  };
}

export async function diskLatency(
  quick: boolean,
  outBase: string,
): Promise<{ fsync: { plain_ms: number; durable_ms: number }; steps: Record<string, number | string>[] }> {
  const dir = fs.mkdtempSync(path.join(outBase, 'spimstream-disk-bench-'));
  try {
    const fsync = await fsyncCost(dir, quick ? 3 : 20);
    const steps: Record<string, number | string>[] = [];
    for (const hog of [false, true]) steps.push(await latencyStep(path.join(dir, hog ? 'hog' : 'idle'), quick ? 2 : 12, hog));
    return { fsync, steps };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--out');
  const r = await diskLatency(process.argv.includes('--quick'), i >= 0 ? process.argv[i + 1] : os.tmpdir());
  process.stdout.write(
    `spimstream disk latency bench — ${JSON.stringify(machine())}\n\n16 MiB shard: ${r.fsync.plain_ms.toFixed(1)} ms written + renamed, ${r.fsync.durable_ms.toFixed(1)} ms with fdatasync + directory fsync\n\n${table(r.steps)}\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ bench: 'disk-latency', machine: machine(), fsync_16mib_plain_ms: r.fsync.plain_ms, fsync_16mib_durable_ms: r.fsync.durable_ms, steps: r.steps })}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
