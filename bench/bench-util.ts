/** Shared bits of the benchmarks: timing, the machine line, tables and the JSON summary line. */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';

/** Resolves once the child has exited (at once if it already has, by code or signal). */
export function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

/** A TCP port free on 127.0.0.1 right now (for a server the bench or test starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** The q-quantile of xs (nearest rank below; 0 for none). */
export function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : 0;
}

export function machine(): Record<string, unknown> {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  return { cores: os.availableParallelism(), cpu, mem_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version };
}

/** Runs fn repeatedly for at least minMs (after one warm-up) and returns seconds per call. */
export function timeIt(fn: () => void, minMs = 400, minRuns = 3): number {
  fn();
  let runs = 0;
  const t0 = performance.now();
  while (runs < minRuns || performance.now() - t0 < minMs) {
    fn();
    runs++;
  }
  return (performance.now() - t0) / 1000 / runs;
}

export async function timeItAsync(fn: () => Promise<void>, minMs = 400, minRuns = 3): Promise<number> {
  await fn();
  let runs = 0;
  const t0 = performance.now();
  while (runs < minRuns || performance.now() - t0 < minMs) {
    await fn();
    runs++;
  }
  return (performance.now() - t0) / 1000 / runs;
}

export function table(rows: Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]);
  const cell = (v: string | number) =>
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)) : v;
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c] ?? '').length)));
  const line = (vals: string[]) => `| ${vals.map((v, i) => v.padEnd(w[i])).join(' | ')} |`;
  return [line(cols), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map((r) => line(cols.map((c) => cell(r[c] ?? ''))))].join(
    '\n',
  );
}

/** Order-0 entropy of 16-bit values in bits per value: the lossless bound of a memoryless coder. */
export function entropyBits(values: ArrayLike<number>): number {
  const hist = new Map<number, number>();
  for (let i = 0; i < values.length; i++) hist.set(values[i], (hist.get(values[i]) ?? 0) + 1);
  let h = 0;
  for (const c of hist.values()) {
    const p = c / values.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Sum of a Prometheus text metric's samples whose label set matches `labels` (null when absent). */
export function promMetric(text: string, name: string, labels = /.*/): number | null {
  let found = false;
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name || !labels.test(m[2] ?? '')) continue;
    found = true;
    sum += Number(m[3]);
  }
  return found ? sum : null;
}

/** `--name value` from the command line (or `fallback`), and whether `--quick` was given. */
export function cliArgs(): { arg: (name: string, fallback: string) => string; quick: boolean } {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
  };
  return { arg, quick: process.argv.includes('--quick') };
}
