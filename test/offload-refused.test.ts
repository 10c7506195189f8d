/**
 * A destination that refuses spimstream's credentials (a real SFTP server — Debian sshd on loopback
 * — given a key it does not know, as after a key rotation): the Offloader retries with backoff,
 * names the reason `refused`, raises `offload_stalled`, keeps and never deletes the local files;
 * once the credentials are mended in the rclone config it resumes by itself, the copy is bit-exact,
 * the alert clears and only then is the local file deleted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig } from '../src/config/config.js';
import { EventBus, type PipelineEvents } from '../src/pipeline/events.js';
import { Offloader } from '../src/offload/offloader.js';
import { startSftpServer, type SftpServer } from '../bench/sftp-server.js';
import { freePort, tmpDir, waitFor } from './helpers.js';

const dirs: string[] = [];
let server: SftpServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('offload to a destination that refuses the credentials', () => {
  it('retries, raises offload_stalled, keeps the local file; resumes by itself once the key is mended', async () => {
    const sshd = tmpDir('refused-sshd');
    const root = tmpDir('refused-local');
    const keys = tmpDir('refused-key');
    dirs.push(sshd, root, keys);
    server = await startSftpServer(sshd, await freePort());
    const good = fs.readFileSync(server.rcloneConfig, 'utf8');
    const conf = server.configWithUnknownKey(keys);
    const remoteDir = path.join(sshd, 'archive');
    fs.mkdirSync(remoteDir);

    const shard = path.join(root, 'acq', '0', 'c', '0', '0', '0', '0');
    fs.mkdirSync(path.dirname(shard), { recursive: true });
    const bytes = randomBytes(2_000_000);
    fs.writeFileSync(shard, bytes);
    const cfg = buildConfig({
      storage: { out: root, min_free_bytes: 0 },
      offload: { destination: `${server.remote}:${remoteDir}`, rclone_config: conf, delete_local: true, retries: 1, stall_seconds: 1 },
    });
    const bus = new EventBus();
    const failures: PipelineEvents['offload-failure'][] = [];
    const alerts: PipelineEvents['alert'][] = [];
    let verified = 0;
    bus.on('offload-failure', (e) => failures.push(e));
    bus.on('alert', (e) => {
      if (e.name === 'offload_stalled') alerts.push(e);
    });
    bus.on('offload-files', (e) => {
      if (e.result === 'verified') verified += e.files;
    });
    const off = new Offloader(cfg, bus);
    try {
      bus.emit('shard-written', { path: shard, bytes: bytes.length, sha256: '' });
      await waitFor(() => failures.length >= 2 && alerts.some((a) => a.active), 60_000, 'two refused attempts and offload_stalled');
      expect(
        failures.every((f) => f.reason === 'refused'),
        JSON.stringify(failures),
      ).toBe(true);
      expect(alerts.find((a) => a.active)?.message).toMatch(/offload stalled/);
      expect(verified).toBe(0);
      expect(Buffer.compare(fs.readFileSync(shard), bytes), 'the local file is kept, unchanged').toBe(0);
      expect(off.status().files).toBe(1);

      // The facility mends the credentials; nobody restarts spimstream.
      fs.writeFileSync(conf, good);
      await waitFor(() => verified >= 1, 90_000, 'the shard verified after the key was mended');
      expect(Buffer.compare(fs.readFileSync(path.join(remoteDir, 'acq', '0', 'c', '0', '0', '0', '0')), bytes)).toBe(0);
      await waitFor(() => !fs.existsSync(shard), 30_000, 'the verified local copy deleted');
      await waitFor(() => alerts.at(-1)?.active === false, 30_000, 'offload_stalled cleared');
      expect(off.status().files).toBe(0);
    } finally {
      await off.stop(1000);
    }
  }, 180_000);
});
