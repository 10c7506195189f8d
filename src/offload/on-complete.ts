/**
 * The hand-off hook: `offload.on_complete` (an argv array, never a shell) runs once a store's
 * manifest is verified at the destination, with SPIMSTREAM_STORE, SPIMSTREAM_MANIFEST and
 * SPIMSTREAM_DESTINATION in its environment and a timeout; its output goes to the log, its exit
 * status, the Slurm jobs its output names (sbatch's "Submitted batch job N", Snakemake's "external
 * jobid 'N'") and the time since the acquisition ended to /metrics (events `on-complete-started`,
 * `on-complete`). It runs beside the next acquisition and never holds it up.
 */
import { spawn } from 'node:child_process';
import type { EventBus } from '../pipeline/events.js';

const JOB_ID = [/Submitted batch job (\d+)/, /external jobid '(\d+)'/, /SLURM jobid (\d+)/];

/** The Slurm job ids a line of sbatch's or Snakemake's output names. */
export function slurmJobIds(line: string): string[] {
  return JOB_ID.flatMap((re) => {
    const m = re.exec(line);
    return m ? [m[1]] : [];
  });
}

export function runOnComplete(
  argv: string[],
  timeoutS: number,
  env: Record<string, string>,
  bus: EventBus,
  acquisitionEndedAt: number | null = null,
): Promise<number | null> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    const jobs: string[] = [];
    bus.emit('on-complete-started', { command: cmd, store: env.SPIMSTREAM_STORE ?? '' });
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const say = (level: 'info' | 'warn') => (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line.trim()) continue;
        bus.emit('log', { level, msg: `on_complete: ${line}`, fields: { command: cmd } });
        for (const id of slurmJobIds(line)) if (!jobs.includes(id)) jobs.push(id);
      }
    };
    child.stdout.on('data', say('info'));
    child.stderr.on('data', say('warn'));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    const finish = (code: number | null, why: string) => {
      clearTimeout(timer);
      const seconds = acquisitionEndedAt === null ? null : (Date.now() - acquisitionEndedAt) / 1000;
      bus.emit('on-complete', { command: cmd, code, jobs, seconds });
      bus.emit('log', {
        level: code === 0 ? 'info' : 'error',
        msg: `on_complete ${cmd} ${why}${jobs.length > 0 ? `; Slurm jobs ${jobs.join(', ')}` : ''}${seconds === null ? '' : `; ${seconds.toFixed(0)} s after the acquisition ended`}`,
        fields: { store: env.SPIMSTREAM_STORE },
      });
      resolve(code);
    };
    child.on('error', (e) => finish(null, `could not start: ${e.message}`));
    child.on('close', (code) => finish(code, timedOut ? `killed after the ${timeoutS} s timeout` : `exited with ${code}`));
  });
}
