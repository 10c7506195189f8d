/**
 * The built-in simulator as a separate process (`spimstream sim`), as a real producer would be:
 * it writes the ring through the documented protocol and takes fault commands on its stdin.
 */
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Config } from '../config/config.js';
import { PACKAGE_ROOT } from '../package-info.js';

export function startSimulatorProcess(cfg: Config, ringPath: string): ChildProcess {
  const s = cfg.sim;
  const args = [
    path.join(PACKAGE_ROOT, 'bin', 'spimstream.js'), 'sim', '--ring', ringPath,
    '--width', String(s.width), '--height', String(s.height), '--z-planes', String(s.z_planes),
    '--channels', String(s.channels), '--fps', String(s.fps), '--slots', String(s.slots),
    '--bit-depth', String(s.bit_depth), '--seed', String(s.seed), '--blobs', String(s.blobs),
    '--timepoints', String(s.timepoints), '--faults', JSON.stringify(s.faults), '--unlink', '--stdin-commands',
  ];
  return spawn(process.execPath, args, { stdio: ['pipe', 'inherit', 'inherit'] });
}
