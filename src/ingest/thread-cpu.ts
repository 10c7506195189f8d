/**
 * Which thread spends the CPU: each of spimstream's threads names itself (Linux `comm`, shown by
 * top -H and ps -L) and the scrape sums user + system time per kind from /proc/self/task. Lives in
 * the lowest room because the ingest thread and the workers both name themselves. Elsewhere than
 * Linux it does nothing (an empty map).
 */
import fs from 'node:fs';

export type ThreadKind = 'main' | 'ingest' | 'worker' | 'preview' | 'other';
export const THREAD_KINDS: ThreadKind[] = ['main', 'ingest', 'worker', 'preview', 'other'];
const NAMES: Record<string, ThreadKind> = { 'spim-ingest': 'ingest', 'spim-worker': 'worker', 'spim-preview': 'preview' };
const TICK_S = 0.01; // USER_HZ = 100 on Linux

/** Names the calling thread (15 bytes at most); false where /proc/thread-self is not writable. */
export function nameThisThread(name: 'spim-ingest' | 'spim-worker' | 'spim-preview'): boolean {
  try {
    fs.writeFileSync('/proc/thread-self/comm', name);
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) of this process's live threads by kind; libuv's file-system pool, GC and V8 helpers are `other`. */
export function threadCpuSeconds(): Map<ThreadKind, number> {
  const out = new Map<ThreadKind, number>();
  let tasks: string[];
  try {
    tasks = fs.readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const k of THREAD_KINDS) out.set(k, 0);
  for (const tid of tasks) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const secs = (Number(f[11]) + Number(f[12])) * TICK_S;
      const kind = tid === String(process.pid) ? 'main' : (NAMES[fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()] ?? 'other');
      out.set(kind, (out.get(kind) ?? 0) + secs);
    } catch {
      /* the thread exited meanwhile */
    }
  }
  return out;
}
