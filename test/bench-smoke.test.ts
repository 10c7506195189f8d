import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

// Keeps `npm run bench` from rotting: a short run at a low rate, checked for a sane summary.
// Speed is judged by the bench itself, never here.
describe('benchmark smoke run', () => {
  it('npm run bench -- --quick runs every bench and prints one JSON summary line', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/bench/run-all.js'), '--quick'], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 180_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]) as Record<string, number | boolean | null>;
    expect(summary.bench).toBe('all');
    expect(summary.max_sustained_mb_s).toBeGreaterThan(0);
    expect(summary.codec_default_mb_s_per_core_sim).toBeGreaterThan(0);
    expect(summary.qc_default_ms_per_2048_frame).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/## Lossless codecs, one core/);
    expect(r.stdout).toMatch(/\| sim 32x256x256 +\| blosc-zstd 1, whole chunk/);
    // The ingest step ran against a real sidecar process: its poll-gap gauge was scraped.
    expect(r.stdout).toMatch(/## Ingest under load/);
    expect(summary.ingest_poll_gap_max_ms).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/pyramid reduce job/);
    // The scaling model: CPU per GB by thread kind, from the sidecar's own per-thread metric.
    expect(r.stdout).toMatch(/## Scaling model/);
    const scaling = summary.scaling as unknown as { cores_for_1600_mb_s: number; cpu_s_per_gb_total: number };
    expect(scaling.cores_for_1600_mb_s).toBeGreaterThan(0);
    const byThread = summary.cpu_s_per_gb_by_thread as unknown as Record<string, number>;
    expect(byThread.worker).toBeGreaterThan(0);
    expect(byThread.ingest).toBeGreaterThan(0);
  });

  it('the pyramid bench (levels 0, 1, auto side by side) runs and reports the reduce jobs per level', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/bench/pyramid-bench.js'), '--quick'], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 180_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]) as {
      bench: string;
      max_sustained_mb_s: Record<string, number>;
      pyramid_s_per_gb: Record<string, Record<string, number> | null>;
    };
    expect(summary.bench).toBe('pyramid');
    expect(Object.keys(summary.max_sustained_mb_s)).toEqual(['levels 0', 'levels 1', 'levels auto']);
    expect(summary.pyramid_s_per_gb['levels 1']?.['1']).toBeGreaterThan(0);
    expect(summary.pyramid_s_per_gb['levels 0']).toEqual({});
  });

  it('the direct-I/O bench (page cache vs O_DIRECT side by side) runs both configs at every rate', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/bench/direct-io-bench.js'), '--quick'], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 180_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]) as {
      bench: string;
      steps: { config: string; rate: number; in: number; cpu: number }[];
    };
    expect(summary.bench).toBe('direct-io');
    expect(summary.steps.map((s) => s.config).sort()).toEqual(['O_DIRECT', 'buffered']);
    for (const s of summary.steps) {
      expect(s.in, `${s.config}: frames went through`).toBeGreaterThan(0);
      expect(s.cpu, `${s.config}: CPU per GB measured`).toBeGreaterThan(0);
    }
  });
});
