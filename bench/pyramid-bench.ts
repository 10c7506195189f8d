/**
 * The live pyramid's cost, side by side: the end-to-end throughput step (separate simulator process,
 * full QC, default codec, preview client, /metrics scraped) with storage.levels 0, 1 and auto,
 * interleaved rate by rate so the shared VM's drift hits every config alike. A config drops out at
 * its first step with frames lost or not stored. Reports each config's highest clean rate, its ratio
 * to levels 0 (acquire-zarr's own figures: 0.46x with its pyramid on), CPU s/GB at the highest rate
 * every config held, and the reduce jobs' worker seconds per GB for each level.
 * Usage: node dist/bench/pyramid-bench.js [--rates 300,400,450,500,550] [--seconds 20] [--size 2048] [--out DIR] [--quick]
 */
import os from 'node:os';
import { cliArgs, machine, table } from './bench-util.js';
import { runStep, type StepResult } from './throughput-bench.js';

interface Variant {
  name: string;
  args: string[];
}

// A 2048² z-block with the pyramid's half-size sums is 384 MiB: 1536 MiB holds 4 of them, as the
// default 1024 MiB holds 4 without (see the README's memory table).
const VARIANTS: Variant[] = [
  { name: 'levels 0', args: [] },
  { name: 'levels 1', args: ['--set', 'storage.levels=1', '--set', 'pipeline.block_pool_mib=1536'] },
  { name: 'levels auto', args: ['--set', 'storage.levels=auto', '--set', 'pipeline.block_pool_mib=1536'] },
];

const clean = (s: StepResult, rate: number) => s.lost_overrun === 0 && s.lost_gap === 0 && s.unstored === 0 && s.input_mb_s > 0.9 * rate;

export async function pyramidBench(
  rates: number[],
  seconds: number,
  size: number,
  outDir: string,
): Promise<{ rows: Record<string, string | number>[]; summary: Record<string, unknown> }> {
  const alive = new Set(VARIANTS.map((v) => v.name));
  const max = new Map<string, number>(VARIANTS.map((v) => [v.name, 0]));
  const results: { variant: string; step: StepResult }[] = [];
  let port = 19400;
  for (const rate of rates) {
    for (const v of VARIANTS) {
      if (!alive.has(v.name)) continue;
      const step = await runStep(rate, seconds, size, port++, outDir, v.args);
      results.push({ variant: v.name, step });
      process.stderr.write(
        `${v.name} @ ${rate} MB/s: input ${step.input_mb_s.toFixed(0)} MB/s, lost ${step.lost_overrun + step.lost_gap}, unstored ${step.unstored} ${JSON.stringify(step.unstored_reasons)}\n`,
      );
      if (clean(step, rate)) max.set(v.name, step.input_mb_s);
      else alive.delete(v.name);
    }
    if (alive.size === 0) break;
  }
  const gb = (s: StepResult) => (s.input_mb_s * seconds) / 1000;
  const rows = results.map(({ variant, step: s }) => ({
    config: variant,
    'target MB/s': s.target_mb_s,
    'input MB/s': s.input_mb_s,
    overrun: s.lost_overrun,
    gap: s.lost_gap,
    unstored: s.unstored,
    'store p99 ms': s.store_p99_ms,
    'CPU s/GB': s.cpu_s_per_gb,
    'RSS peak MB': s.rss_peak_mb,
    'written MB': s.written_mb,
    'pyramid s/GB by level':
      Object.entries(s.pyramid_s)
        .sort()
        .map(([k, v]) => `${k}: ${(v / Math.max(1e-9, gb(s))).toFixed(3)}`)
        .join(', ') || '-',
  }));
  const base = max.get('levels 0') ?? 0;
  // CPU cost compared at the highest rate that every config held
  const common = Math.max(
    0,
    ...rates.filter((r) =>
      VARIANTS.every((v) => results.some((x) => x.variant === v.name && x.step.target_mb_s === r && clean(x.step, r))),
    ),
  );
  const at = (name: string) => results.find((x) => x.variant === name && x.step.target_mb_s === common)?.step;
  const summary = {
    bench: 'pyramid',
    machine: machine(),
    seconds,
    size,
    max_sustained_mb_s: Object.fromEntries(max),
    ratio_to_levels0: Object.fromEntries(VARIANTS.map((v) => [v.name, base > 0 ? (max.get(v.name) ?? 0) / base : 0])),
    compared_at_mb_s: common,
    cpu_s_per_gb: Object.fromEntries(VARIANTS.map((v) => [v.name, at(v.name)?.cpu_s_per_gb ?? null])),
    written_mb: Object.fromEntries(VARIANTS.map((v) => [v.name, at(v.name)?.written_mb ?? null])),
    // per level, at the common rate (or, if there is none, the config's last step)
    pyramid_s_per_gb: Object.fromEntries(
      VARIANTS.map((v) => {
        const s = at(v.name) ?? results.filter((x) => x.variant === v.name).at(-1)?.step;
        return [v.name, s ? Object.fromEntries(Object.entries(s.pyramid_s).map(([k, x]) => [k, x / Math.max(1e-9, gb(s))])) : null];
      }),
    ),
  };
  return { rows, summary };
}

async function main(): Promise<void> {
  const { arg, quick } = cliArgs();
  const rates = arg('rates', quick ? '20' : '300,400,450,500,550,600')
    .split(',')
    .map(Number);
  const seconds = Number(arg('seconds', quick ? '3' : '20'));
  const { rows, summary } = await pyramidBench(rates, seconds, Number(arg('size', quick ? '512' : '2048')), arg('out', os.tmpdir()));
  process.stdout.write(
    `spimstream live pyramid, side by side — ${JSON.stringify(machine())}\n\n${table(rows)}\n\n${JSON.stringify(summary)}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
