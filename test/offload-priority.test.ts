/**
 * Offload's priority rule (src/offload/offload-status.ts offloadUrgent, applied by offloader.ts):
 * rclone yields to storing while the local disk holds the backlog, and runs at storing's priority
 * once the free space above storage.min_free_bytes is less than the backlog. The rule as a function,
 * then through the real Offloader and real rclone on a small tmpfs whose free space is set by a
 * ballast file — the condition made, not waited for under a load the machine may not have.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig } from '../src/config/config.js';
import { EventBus } from '../src/pipeline/events.js';
import { Offloader } from '../src/offload/offloader.js';
import { offloadUrgent } from '../src/offload/offload-status.js';
import { mountFs, tmpDir, unmountFs, waitFor } from './helpers.js';

const mounts: string[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) unmountFs(m);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('offload priority', () => {
  it('is urgent once free space is below the backlog, and yields only at twice the backlog', () => {
    const MB = 1e6;
    expect(offloadUrgent(10 * MB, 4 * MB, false)).toBe(false);
    expect(offloadUrgent(3 * MB, 4 * MB, false)).toBe(true);
    // Hysteresis: once urgent, it stays so until free space is twice the backlog.
    expect(offloadUrgent(6 * MB, 4 * MB, true)).toBe(true);
    expect(offloadUrgent(8 * MB, 4 * MB, true)).toBe(false);
    // Nothing waiting: nothing to hurry, even on a full disk.
    expect(offloadUrgent(-1 * MB, 0, true)).toBe(false);
  });

  it("a backlog larger than the free space runs at storing's priority (logged, in the status), and yields again once it is gone", async () => {
    const root = tmpDir('prio-local');
    const dest = tmpDir('prio-dest');
    dirs.push(dest, root);
    mountFs(root, { size: '16m' });
    mounts.push(root);
    // 16 MiB disk, 1 MB margin, an 8 MiB ballast and a 4.5 MB shard waiting: ~2.9 MB free above the
    // margin — positive (storing goes on) but less than the backlog.
    fs.writeFileSync(path.join(root, 'ballast'), Buffer.alloc(8 * 2 ** 20, 1));
    const shard = path.join(root, 'acq', '0', 'c', '0', '0', '0', '0');
    fs.mkdirSync(path.dirname(shard), { recursive: true });
    const bytes = randomBytes(4_500_000);
    fs.writeFileSync(shard, bytes);
    const cfg = buildConfig({ storage: { out: root, min_free_bytes: 1e6 }, offload: { destination: dest, delete_local: true } });
    const bus = new EventBus();
    const logs: string[] = [];
    bus.on('log', (e) => logs.push(e.msg));
    let verified = 0;
    bus.on('offload-files', (e) => {
      if (e.result === 'verified') verified += e.files;
    });
    const off = new Offloader(cfg, bus);
    try {
      const st = fs.statfsSync(root);
      const free = st.bavail * st.bsize - 1e6;
      expect(free > 0 && free < bytes.length, `free above the margin ${free} B, backlog ${bytes.length} B`).toBe(true);
      bus.emit('shard-written', { path: shard, bytes: bytes.length, sha256: '' });
      await waitFor(() => verified >= 1, 60_000, 'the shard verified at the destination');
      expect(
        logs.some((m) => /^offload now runs at storing's priority/.test(m)),
        logs.join('\n'),
      ).toBe(true);
      expect(Buffer.compare(fs.readFileSync(path.join(dest, 'acq', '0', 'c', '0', '0', '0', '0')), bytes)).toBe(0);
      await waitFor(() => !fs.existsSync(shard), 30_000, 'the verified shard deleted locally');
      // A small file next: free space is now far above twice the backlog, so offload yields again.
      const small = path.join(root, 'acq', '0', 'c', '0', '0', '0', '1');
      fs.writeFileSync(small, randomBytes(1000));
      bus.emit('shard-written', { path: small, bytes: 1000, sha256: '' });
      await waitFor(() => verified >= 2, 60_000, 'the second file verified');
      expect(
        logs.some((m) => /^offload yields to storing again/.test(m)),
        logs.join('\n'),
      ).toBe(true);
      expect(off.status().urgent).toBe(false);
    } finally {
      await off.stop(1000);
    }
  }, 120_000);
});
