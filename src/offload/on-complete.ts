/**
 * The hand-off hook: `offload.on_complete` (an argv array, never a shell) runs once a store's
 * manifest is verified at the destination, with SPIMSTREAM_STORE, SPIMSTREAM_MANIFEST and
 * SPIMSTREAM_DESTINATION in its environment and a timeout; its output goes to the log, its exit
 * status to /metrics (event `on-complete`).
 */
import { spawn } from 'node:child_process';
import type { EventBus } from '../pipeline/events.js';

export function runOnComplete(argv: string[], timeoutS: number, env: Record<string, string>, bus: EventBus): Promise<number | null> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const say = (level: 'info' | 'warn') => (d: Buffer) => {
      for (const line of d.toString().split('\n'))
        if (line.trim()) bus.emit('log', { level, msg: `on_complete: ${line}`, fields: { command: cmd } });
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
      bus.emit('on-complete', { command: cmd, code });
      bus.emit('log', { level: code === 0 ? 'info' : 'error', msg: `on_complete ${cmd} ${why}`, fields: { store: env.SPIMSTREAM_STORE } });
      resolve(code);
    };
    child.on('error', (e) => finish(null, `could not start: ${e.message}`));
    child.on('close', (code) => finish(code, timedOut ? `killed after the ${timeoutS} s timeout` : `exited with ${code}`));
  });
}
