/**
 * Scaling for bigger PCs (`npm run bench -- --scaling`): the throughput steps again with
 * pipeline.workers = 1, 2, 4, 8, … up to the cores present, each up to its first step that loses or
 * sheds a frame. Per worker count: the highest clean rate and the CPU seconds per raw GB by thread
 * kind there — on a 16-core PC the 1600 MB/s custom SPIM is checked with this one command.
 */
import os from 'node:os';
import { throughput } from './throughput-bench.js';

export interface ScalingRow {
  workers: number;
  'highest clean MB/s': number;
  'CPU s/GB': number | string;
  [kind: string]: number | string;
}

export async function scaling(seconds: number, outDir: string): Promise<ScalingRow[]> {
  const cores = os.availableParallelism();
  const counts: number[] = [];
  for (let w = 1; w <= cores; w *= 2) counts.push(w);
  if (counts.at(-1) !== cores) counts.push(cores);
  const rates = [100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000, 2400, 2800, 3200];
  const rows: ScalingRow[] = [];
  for (const workers of counts) {
    const { steps, max } = await throughput(rates, seconds, 2048, outDir, ['--set', `pipeline.workers=${workers}`]);
    const best = steps.filter((s) => s.lost_overrun + s.lost_gap + s.unstored === 0).at(-1);
    const row: ScalingRow = { workers, 'highest clean MB/s': max, 'CPU s/GB': best?.cpu_s_per_gb ?? '–' };
    for (const [k, v] of Object.entries(best?.cpu_s_per_gb_by_thread ?? {})) row[`${k} s/GB`] = v;
    rows.push(row);
  }
  return rows;
}
