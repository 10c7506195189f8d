// Run once around the whole test run (vitest globalSetup): see crash-witness.ts.
import fs from 'node:fs';
import { witnessDir, witnessReport } from './crash-witness.js';

export function setup(): void {
  process.env.SPIMSTREAM_TEST_RUN = String(process.pid); // inherited by the test processes
  fs.rmSync(witnessDir(), { recursive: true, force: true });
}

export function teardown(): void {
  const report = witnessReport();
  if (report) process.stderr.write(`\n${report}\n`);
  fs.rmSync(witnessDir(), { recursive: true, force: true });
  // The sidecars' `<ring>.seen` markers of test rings that are gone (a later sidecar prunes them; the last one is left).
  for (const n of fs.readdirSync('/dev/shm'))
    if (n.startsWith('spimstream-test-') && n.endsWith('.seen') && !fs.existsSync(`/dev/shm/${n.slice(0, -5)}`))
      fs.rmSync(`/dev/shm/${n}`, { force: true });
}
