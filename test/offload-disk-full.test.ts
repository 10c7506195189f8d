/**
 * Offload on a data disk that is full: nothing throws out of the offloader (it used to crash the
 * sidecar writing its batch list there), the shard still goes to the destination bit-exact, the
 * journal keeps its progress in memory and says so in one line, no local file is deleted while its
 * verified entry is not on disk — and once there is room again the journal is written and the
 * verified copy deleted, without a new shard to prompt it.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig } from '../src/config/config.js';
import { Offloader } from '../src/offload/offloader.js';
import { JOURNAL_NAME } from '../src/offload/journal.js';
import { EventBus } from '../src/pipeline/events.js';
import { mountFs, tmpDir, unmountFs, waitFor } from './helpers.js';

const mounts: string[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) unmountFs(m);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('offload with the data disk full', () => {
  it('sends, keeps the journal in memory, deletes only once it is written', async () => {
    const root = tmpDir('full-root');
    const dest = tmpDir('full-dest');
    dirs.push(dest, root);
    mountFs(root, { size: '8m' });
    mounts.push(root);
    const shard = path.join(root, 'acq', '0', 'c', '0', '0', '0', '0');
    fs.mkdirSync(path.dirname(shard), { recursive: true });
    const bytes = randomBytes(1_000_000);
    fs.writeFileSync(shard, bytes);
    const cfg = buildConfig({ storage: { out: root, min_free_bytes: 0 }, offload: { destination: dest, delete_local: true } });
    const bus = new EventBus();
    const logs: string[] = [];
    bus.on('log', (e) => logs.push(e.msg));
    let verified = 0;
    bus.on('offload-files', (e) => {
      if (e.result === 'verified') verified += e.files;
    });
    const off = new Offloader(cfg, bus);
    const filler = path.join(root, 'filler');
    try {
      // Every free byte taken: the journal's next append gets ENOSPC.
      const st = fs.statfsSync(root);
      expect(spawnSync('fallocate', ['-l', String(st.bavail * st.bsize), filler]).status).toBe(0);
      expect(fs.statfsSync(root).bavail).toBe(0);
      bus.emit('shard-written', { path: shard, bytes: bytes.length, sha256: '' });
      await waitFor(() => verified >= 1, 60_000, 'the shard verified at the destination');
      expect(Buffer.compare(fs.readFileSync(path.join(dest, 'acq', '0', 'c', '0', '0', '0', '0')), bytes)).toBe(0);
      const refused = logs.filter((m) => /^offload journal cannot be written \(ENOSPC/.test(m));
      expect(refused, logs.join('\n')).toHaveLength(1);
      expect(refused[0]).not.toContain('\n');
      // Verified, but its entry is not on disk: the local copy stays.
      expect(fs.existsSync(shard)).toBe(true);
      expect(fs.readFileSync(path.join(root, JOURNAL_NAME), 'utf8')).not.toContain('"verified"');
      // Room again: the journal is written and the copy deleted without anything else happening.
      fs.rmSync(filler);
      await waitFor(() => !fs.existsSync(shard), 30_000, 'the verified shard deleted locally');
      const journal = fs.readFileSync(path.join(root, JOURNAL_NAME), 'utf8');
      expect(journal).toContain('"e":"queued","f":"acq/0/c/0/0/0/0"');
      expect(journal).toContain('"e":"verified","f":"acq/0/c/0/0/0/0"');
      expect(logs.filter((m) => /^offload journal written again/.test(m))).toHaveLength(1);
      for (const line of journal.split('\n').filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow();
    } finally {
      await off.stop(5_000);
    }
  }, 90_000);
});
