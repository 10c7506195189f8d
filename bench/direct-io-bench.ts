/**
 * Shard writes through the page cache or around it (storage.direct_io off vs auto = O_DIRECT), side
 * by side: the end-to-end throughput step (separate simulator process, full QC, default codec,
 * preview client, /metrics scraped), the two configs interleaved rate by rate — which goes first
 * alternates — so the shared VM's drift hits both alike. Every rate runs for both (no drop-out), so
 * frames not stored and CPU per GB, by thread kind ('other' holds libuv's file-system threads),
 * compare at every rate.
 * Usage: node dist/bench/direct-io-bench.js [--rates 400,450,500,550,600] [--seconds 20] [--size 2048] [--out DIR] [--quick]
 */
import os from 'node:os';
import { cliArgs, machine, table } from './bench-util.js';
import { runStep, type StepResult } from './throughput-bench.js';

const CONFIGS = [
  { name: 'buffered', args: ['--set', 'storage.direct_io=off'] },
  { name: 'O_DIRECT', args: [] as string[] },
];

export async function directIoBench(
  rates: number[],
  seconds: number,
  size: number,
  outDir: string,
): Promise<{ rows: Record<string, string | number>[]; summary: Record<string, unknown> }> {
  const results: { config: string; step: StepResult }[] = [];
  let port = 19600;
  for (const [i, rate] of rates.entries()) {
    for (const c of i % 2 === 0 ? CONFIGS : [...CONFIGS].reverse()) {
      const step = await runStep(rate, seconds, size, port++, outDir, c.args);
      results.push({ config: c.name, step });
      process.stderr.write(
        `${c.name} @ ${rate} MB/s: input ${step.input_mb_s.toFixed(0)} MB/s, lost ${step.lost_overrun + step.lost_gap}, unstored ${step.unstored}, ${step.cpu_s_per_gb.toFixed(2)} CPU-s/GB\n`,
      );
    }
  }
  const k = (s: StepResult, kind: string) => s.cpu_s_per_gb_by_thread[kind] ?? 0;
  const rows = results.map(({ config, step: s }) => ({
    config,
    'target MB/s': s.target_mb_s,
    'input MB/s': s.input_mb_s,
    lost: s.lost_overrun + s.lost_gap,
    unstored: s.unstored,
    'QC sampled': s.qc_sampled,
    'store p99 ms': s.store_p99_ms,
    'CPU s/GB': s.cpu_s_per_gb,
    main: k(s, 'main'),
    ingest: k(s, 'ingest'),
    workers: k(s, 'worker'),
    other: k(s, 'other'),
    'written MB': s.written_mb,
  }));
  const clean = (s: StepResult) => s.lost_overrun + s.lost_gap + s.unstored === 0 && s.input_mb_s > 0.9 * s.target_mb_s;
  const summary = {
    bench: 'direct-io',
    machine: machine(),
    seconds,
    size,
    highest_clean_mb_s: Object.fromEntries(
      CONFIGS.map((c) => [
        c.name,
        Math.max(0, ...results.filter((r) => r.config === c.name && clean(r.step)).map((r) => r.step.target_mb_s)),
      ]),
    ),
    steps: results.map(({ config, step: s }) => ({
      config,
      rate: s.target_mb_s,
      in: +s.input_mb_s.toFixed(0),
      lost: s.lost_overrun + s.lost_gap,
      unstored: s.unstored,
      cpu: +s.cpu_s_per_gb.toFixed(2),
      other: +k(s, 'other').toFixed(2),
    })),
  };
  return { rows, summary };
}

async function main(): Promise<void> {
  const { arg, quick } = cliArgs();
  const rates = arg('rates', quick ? '20' : '400,450,500,550,600')
    .split(',')
    .map(Number);
  const seconds = Number(arg('seconds', quick ? '3' : '20'));
  const { rows, summary } = await directIoBench(rates, seconds, Number(arg('size', quick ? '512' : '2048')), arg('out', os.tmpdir()));
  process.stdout.write(
    `spimstream shard writes, page cache vs O_DIRECT, side by side — ${JSON.stringify(machine())}\n\n${table(rows)}\n\n${JSON.stringify(summary)}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
