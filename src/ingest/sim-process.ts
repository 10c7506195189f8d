/**
 * The built-in simulator as a separate process (`spimstream sim`), as a real producer would be:
 * it writes the ring through the documented protocol and takes fault commands on its stdin.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Config } from '../config/config.js';
import { PACKAGE_ROOT } from '../package-info.js';
import { alive } from './ring-lock.js';

const SHM = '/dev/shm';
const SIM_RING = /^spimstream-sim-(\d+)(?:-\d+)?$/;
let simRings = 0;

/**
 * The ring of the simulator a sidecar starts: its name carries the sidecar's pid, and a count after
 * the first, so two sidecars in one process (an embedding, the tests) never share a ring.
 */
export function simRingPath(pid = process.pid): string {
  const n = simRings++;
  return `${SHM}/spimstream-sim-${pid}${n === 0 ? '' : `-${n}`}`;
}

/** Removes a simulator ring and its lock (the simulator normally does; a signal can end it first). */
export function removeSimRing(ring: string): boolean {
  const had = fs.existsSync(ring);
  fs.rmSync(ring, { force: true });
  fs.rmSync(`${ring}.lock`, { force: true });
  fs.rmSync(`${ring}.seen`, { force: true });
  return had;
}

/**
 * Simulator rings whose sidecar is gone (both killed at once, a power cut): RAM in /dev/shm that
 * nobody else frees. Returns the paths removed.
 */
export function removeStaleSimRings(): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(SHM);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const bases = new Set(names.map((n) => n.replace(/\.(lock|seen)$/, '')));
  for (const n of bases) {
    const m = SIM_RING.exec(n);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    if (removeSimRing(path.join(SHM, n))) removed.push(path.join(SHM, n));
  }
  return removed;
}

export function startSimulatorProcess(cfg: Config, ringPath: string): ChildProcess {
  const s = cfg.sim;
  const args = [
    path.join(PACKAGE_ROOT, 'bin', 'spimstream.js'),
    'sim',
    '--ring',
    ringPath,
    '--width',
    String(s.width),
    '--height',
    String(s.height),
    '--z-planes',
    String(s.z_planes),
    '--channels',
    String(s.channels),
    '--fps',
    String(s.fps),
    '--slots',
    String(s.slots),
    '--bit-depth',
    String(s.bit_depth),
    '--seed',
    String(s.seed),
    '--blobs',
    String(s.blobs),
    '--timepoints',
    String(s.timepoints),
    '--faults',
    JSON.stringify(s.faults),
    '--unlink',
    '--stdin-commands',
  ];
  return spawn(process.execPath, args, { stdio: ['pipe', 'inherit', 'inherit'] });
}
