/**
 * Sidecar logs of in-process apps in the tests: written to test-output/logs/<test file>.log and
 * kept in memory, printed only for a test that failed (test/setup.ts), so a green `npm test`
 * prints test results rather than the warnings the tests provoke on purpose.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { PACKAGE_ROOT as ROOT } from '../src/package-info.js';

let lines: string[] = [];
let file: string | null = null;

export const testLogStream = new Writable({
  write(chunk: Buffer | string, _enc, done) {
    const text = chunk.toString();
    lines.push(text);
    if (file) fs.appendFileSync(file, text);
    done();
  },
});

/** A new test file: its own log file, nothing kept from the previous one. */
export function openTestLog(testFile: string): void {
  const dir = path.join(ROOT, 'test-output', 'logs');
  fs.mkdirSync(dir, { recursive: true });
  file = path.join(dir, `${path.basename(testFile).replace(/\.test\.ts$/, '')}.log`);
  fs.writeFileSync(file, '');
  lines = [];
}

export function logMark(): number {
  return lines.length;
}

/** The log lines written since `mark` (what a failed test's sidecar said). */
export function logSince(mark: number): string {
  return lines.slice(mark).join('');
}

/** The file this test file's sidecar logs go to. */
export function logFile(): string | null {
  return file;
}
