/**
 * Names the test that was running when a test process died without a word (a native crash, a
 * signal, the OOM killer): vitest itself says only "Worker exited unexpectedly". Each test process
 * keeps a marker file with its current test; a clean end removes it. The global teardown prints
 * every marker left behind, the kernel's lines about that process, and any Node fatal-error report,
 * at the end of the run where a CI log's tail still shows them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

/** One folder per test run: the global setup names the run before any test process starts. */
export const witnessDir = () => path.join(os.tmpdir(), `spimstream-test-witness-${process.env.SPIMSTREAM_TEST_RUN ?? 'local'}`);

const marker = () => path.join(witnessDir(), `running-${process.pid}`);

/** In a test process: what is running now (a file, then a test name). */
export function witness(what: string): void {
  fs.mkdirSync(witnessDir(), { recursive: true });
  fs.writeFileSync(marker(), `${what}\n`);
  process.report.reportOnFatalError = true;
  process.report.directory = witnessDir();
}

/** In a test process, at its clean end. */
export function witnessDone(): void {
  fs.rmSync(marker(), { force: true });
}

interface FatalReport {
  header?: { event?: string; trigger?: string; processId?: number; threadId?: number | null };
  javascriptStack?: { message?: string; stack?: string[] };
  nativeStack?: { pc?: string; symbol?: string }[];
}

/** In the main process after the run: one paragraph per test process that died mid-test. */
export function witnessReport(): string {
  const dir = witnessDir();
  if (!fs.existsSync(dir)) return '';
  const out: string[] = [];
  const kernel = spawnSync('dmesg', [], { encoding: 'utf8' }).stdout ?? '';
  for (const f of fs.readdirSync(dir)) {
    const file = path.join(dir, f);
    const pid = /^running-(\d+)$/.exec(f)?.[1];
    if (pid) {
      out.push(`test process ${pid} died while running: ${fs.readFileSync(file, 'utf8').trim()}`);
      for (const l of kernel.split('\n')) if (new RegExp(`\\b${pid}\\b`).test(l)) out.push(`  kernel: ${l.trim()}`);
    } else if (f.endsWith('.json')) {
      const r = JSON.parse(fs.readFileSync(file, 'utf8')) as FatalReport;
      out.push(
        `Node fatal-error report of process ${r.header?.processId} (thread ${r.header?.threadId ?? 'main'}): ${r.header?.event} (${r.header?.trigger})`,
      );
      // The run's folder is removed after this: the stacks are what a CI log keeps of the crash.
      for (const l of (r.javascriptStack?.stack ?? []).slice(0, 12)) out.push(`  js: ${l.trim()}`);
      for (const f of (r.nativeStack ?? []).slice(0, 16)) out.push(`  native: ${f.symbol ?? f.pc ?? '?'}`);
    }
    fs.rmSync(file, { force: true });
  }
  return out.join('\n');
}
