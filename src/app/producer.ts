/**
 * The ring's producer side as the sidecar sees it: which ring to read, the built-in simulator
 * process when the source is "sim", and the lock that keeps one sidecar per ring.
 */
import type { ChildProcess } from 'node:child_process';
import type { Config } from '../config/config.js';
import { lockRing } from '../ingest/ring-lock.js';
import { removeSimRing, removeStaleSimRings, simRingPath, startSimulatorProcess } from '../ingest/sim-process.js';
import type { EventBus } from '../pipeline/events.js';

export interface RingSource {
  ringPath: string;
  simMode: boolean;
  /** Frees the ring's lock (at stop). */
  unlock: () => void;
}

/** Picks the ring and locks it: a second sidecar on the same ring is refused before anything starts. */
export function claimRing(cfg: Config, bus: EventBus): RingSource {
  const simMode = cfg.source === 'sim';
  const ringPath = simMode ? simRingPath() : cfg.source.slice(4);
  if (simMode) {
    const stale = removeStaleSimRings();
    if (stale.length > 0) {
      bus.emit('log', {
        level: 'warn',
        msg: `removed ${stale.length} simulator ring(s) left in /dev/shm by a sidecar that was killed: ${stale.join(', ')}`,
      });
    }
  }
  return { ringPath, simMode, unlock: lockRing(ringPath) };
}

/** Starts the built-in simulator on the sidecar's ring; its ring is freed whenever it exits. */
export function startSimulator(cfg: Config, bus: EventBus, ringPath: string, stopping: () => boolean): ChildProcess {
  const sim = startSimulatorProcess(cfg, ringPath);
  sim.on('exit', (code, sig) => {
    if (!stopping()) bus.emit('log', { level: code === 0 ? 'info' : 'error', msg: `simulator exited (${sig ?? code})` });
    // Whatever ended it, its ring is this sidecar's to free (it is never reattached).
    if (removeSimRing(ringPath))
      bus.emit('log', { level: 'info', msg: `removed the simulator's ring ${ringPath} (it exited before removing it)` });
  });
  return sim;
}

/** Stops the simulator with SIGTERM and waits for it (a closed stdin alone means "the sidecar died"). */
export async function stopSimulator(sim: ChildProcess | null): Promise<void> {
  if (!sim || sim.exitCode !== null || sim.signalCode !== null) return;
  const exited = new Promise((r) => sim.once('exit', r));
  sim.kill('SIGTERM');
  await exited;
}
