/**
 * The sidecar's process life: a closed stdout/stderr does not kill it, its simulator child never
 * outlives it (kill -9 included) and leaves no ring or lock; /readyz is ready while idle.
 */
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { BIN, exited, shmPath, startTestApp, tmpDir, waitFor } from './helpers.js';

const files: string[] = [];
afterEach(() => {
  for (const f of files.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

async function framesReceived(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('spimstream_frames_received_total'))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
}

describe('process life', () => {
  it('stdout and stderr closed (| head): the sidecar goes on; kill -9: the simulator child exits and removes its ring and lock', async () => {
    const out = tmpDir('epipe');
    files.push(out);
    const p = spawn(process.execPath, [BIN, 'run', '--port', '0', '--out', out, '--set', 'sim.width=128', '--set', 'sim.height=128'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ring = `/dev/shm/spimstream-sim-${p.pid}`;
    let text = '';
    p.stderr.on('data', (d: Buffer) => {
      text += d.toString();
    });
    await waitFor(
      () => /listening on http:\/\/127\.0\.0\.1:(\d+)\//.test(text) && /ring attached/.test(text),
      30000,
      'the sidecar listening and attached',
    );
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(text)![1]);
    // Like `| head`: the reader of both streams goes away.
    p.stdout.destroy();
    p.stderr.destroy();
    const before = await framesReceived(port);
    await waitFor(async () => (await framesReceived(port)) > before + 20, 30000, 'frames still flowing with the log pipes closed');
    expect(p.exitCode).toBeNull();
    expect(fs.existsSync(ring)).toBe(true);
    p.kill('SIGKILL');
    await exited(p);
    const simulators = () =>
      fs
        .readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return (
              fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(ring) &&
              !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${d}/stat`, 'utf8'))
            );
          } catch {
            return false;
          }
        });
    await waitFor(
      () => !fs.existsSync(ring) && !fs.existsSync(`${ring}.lock`) && simulators().length === 0,
      20000,
      'the orphaned simulator to exit and remove its ring and lock',
    );
    expect(simulators()).toEqual([]);
  });

  it('a simulator that published its timepoints exits by itself while the sidecar lives (it took the end of its loop for the sidecar dying)', async () => {
    const out = tmpDir('simend');
    files.push(out);
    const { app, rec } = await startTestApp({
      source: 'sim',
      storage: { out },
      sim: { width: 64, height: 64, z_planes: 4, channels: 1, fps: 200, timepoints: 2 },
    });
    try {
      const sim = app.sim;
      expect(sim).not.toBeNull();
      await waitFor(() => (rec.events['acquisition-finished'] ?? []).length === 1, 30000, 'the acquisition finished');
      // Before the fix it waited out a 10-s grace for its parent to die, and the sidecar's stop waited with it.
      await waitFor(() => sim?.exitCode !== null, 8000, 'the simulator to exit after its last timepoint');
      expect(sim?.exitCode).toBe(0);
      expect(app.pipeline.counters.framesReceived).toBe(8);
    } finally {
      await app.stop();
    }
  });

  it('/readyz is 200 while attached and idle between acquisitions, 503 before a ring exists', async () => {
    const ring = shmPath('ready');
    files.push(ring, `${ring}.lock`);
    const out = tmpDir('ready');
    files.push(out);
    const { app } = await startTestApp({ source: `shm:${ring}`, storage: { out } });
    try {
      const ready = async () => (await fetch(`http://127.0.0.1:${app.port}/readyz`)).status;
      expect(await ready()).toBe(503);
      const w = RingWriter.create(ring, {
        width: 32,
        height: 16,
        dtype: 'uint16',
        bitDepth: 12,
        slotCount: 8,
        zPlanes: 2,
        channels: 1,
        views: 1,
      });
      try {
        await waitFor(async () => (await ready()) === 200, 20000, 'ready once attached to the idle ring');
        w.startAcquisition();
        for (let z = 0; z < 2; z++)
          w.publish(new Uint8Array(32 * 16 * 2).fill(z + 1), {
            cameraCounter: z,
            timestampNs: Date.now() * 1e6,
            t: 0,
            c: 0,
            z,
            view: 0,
            flags: z === 0 ? 1 : 2,
          });
        w.finishAcquisition();
        await waitFor(
          () => app.pipeline.status().acquisition === null && app.pipeline.counters.framesReceived === 2,
          20000,
          'the acquisition finished',
        );
        expect(await ready(), 'idle between acquisitions is ready').toBe(200);
      } finally {
        w.close();
      }
    } finally {
      await app.stop();
    }
  });
});
