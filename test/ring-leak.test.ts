/**
 * No simulator ring is left in /dev/shm, whatever signal reaches the sidecar, its simulator or both
 * (Ctrl-C and systemd signal the whole process group). Each case runs SPIMSTREAM_LEAK_ROUNDS times
 * (default 2 in CI; the closing note's 20 were run with `stress-ng --cpu 1` beside it).
 */
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, exited, waitFor } from './helpers.js';

const ROUNDS = Number(process.env.SPIMSTREAM_LEAK_ROUNDS ?? 2);
const ARGS = [
  'run',
  '--port',
  '0',
  '--set',
  'storage.enabled=false',
  '--set',
  'sim.width=128',
  '--set',
  'sim.height=128',
  '--set',
  'sim.fps=200',
  '--set',
  'log.level=warn',
];

interface Sidecar {
  p: ChildProcess;
  out: () => string;
  ring: string;
  simPid: number;
}

/** A sidecar on the simulator in a process group of its own, once its simulator writes the ring. */
async function start(): Promise<Sidecar> {
  const p = spawn(process.execPath, [BIN, ...ARGS], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  p.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const ring = `/dev/shm/spimstream-sim-${p.pid}`;
  let simPid = 0;
  await waitFor(
    () => {
      try {
        simPid = Number(fs.readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(' ')[0]);
      } catch {
        /* not yet */
      }
      return simPid > 0 && fs.existsSync(ring);
    },
    30_000,
    `the simulator's ring (sidecar output: ${out})`,
  );
  return { p, out: () => out, ring, simPid };
}

const gone = (pid: number) => !fs.existsSync(`/proc/${pid}`) || /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
const leftovers = (s: Sidecar) => [s.ring, `${s.ring}.lock`].filter((f) => fs.existsSync(f));

async function stopAll(s: Sidecar): Promise<void> {
  if (s.p.exitCode === null && s.p.signalCode === null) {
    s.p.kill('SIGTERM');
    await exited(s.p);
  }
  await waitFor(() => gone(s.simPid), 20_000, 'the simulator to exit');
}

describe('no leaked simulator rings', () => {
  const cases: [string, (s: Sidecar) => void][] = [
    ['SIGINT to the process group (Ctrl-C)', (s) => process.kill(-(s.p.pid as number), 'SIGINT')],
    ['SIGTERM to the process group (systemd stop)', (s) => process.kill(-(s.p.pid as number), 'SIGTERM')],
    ['SIGTERM to the sidecar alone', (s) => s.p.kill('SIGTERM')],
    ['SIGTERM to the simulator alone', (s) => process.kill(s.simPid, 'SIGTERM')],
    ['SIGKILL to the sidecar', (s) => s.p.kill('SIGKILL')],
  ];
  for (const [name, signal] of cases) {
    it(
      `${name}: ring and lock gone, ${ROUNDS} times`,
      async () => {
        let rounds = 0;
        for (let i = 0; i < ROUNDS; i++) {
          const s = await start();
          try {
            signal(s);
            if (name.includes('simulator alone')) {
              await waitFor(() => gone(s.simPid), 20_000, 'the simulator to exit');
              expect(s.p.exitCode, 'the sidecar keeps running').toBe(null);
            }
            await waitFor(
              () => leftovers(s).length === 0,
              20_000,
              `no ring left (round ${i}; left: ${leftovers(s).join(', ')}; output: ${s.out()})`,
            );
          } finally {
            await stopAll(s);
          }
          expect(leftovers(s)).toEqual([]);
          rounds++;
        }
        expect(rounds).toBe(ROUNDS);
      },
      60_000 + ROUNDS * 30_000,
    );
  }

  it('SIGKILL to both (a power cut of the session): the next start removes the stale ring and says so', async () => {
    const s = await start();
    process.kill(s.simPid, 'SIGKILL');
    s.p.kill('SIGKILL');
    await exited(s.p);
    await waitFor(() => gone(s.simPid), 20_000, 'the simulator to die');
    expect(fs.existsSync(s.ring)).toBe(true);
    const next = await start();
    try {
      await waitFor(() => !fs.existsSync(s.ring), 20_000, 'the stale ring to be removed');
      await waitFor(
        () => /removed \d+ simulator ring\(s\) left in \/dev\/shm by a sidecar that was killed/.test(next.out()),
        10_000,
        'the log line',
      );
      expect(next.out()).toContain(s.ring);
    } finally {
      await stopAll(next);
    }
    expect(leftovers(next)).toEqual([]);
  }, 120_000);
});
