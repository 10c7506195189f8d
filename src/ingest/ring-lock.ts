/**
 * One sidecar per ring: `<ring>.lock` holds the owner's pid, created exclusively. A lock whose pid is
 * no longer alive (a crashed sidecar) is taken over.
 */
import fs from 'node:fs';

export class RingLockError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'RingLockError';
  }
}

/** A live process (a zombie, killed but not yet reaped by its parent, is not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/**
 * Removes `<ring>.lock` unless its owner is alive (used when the ring itself is removed). A lock
 * owned by `dyingPid` is waited for up to `graceMs`: a parent killed with -9 has closed our stdin
 * pipe a moment before the kernel marks it dead, and on a busy machine that moment is long.
 */
export async function removeStaleLock(ringPath: string, dyingPid = 0, graceMs = 0): Promise<void> {
  const lock = `${ringPath}.lock`;
  const until = Date.now() + graceMs;
  for (;;) {
    let pid: number;
    try {
      pid = Number(fs.readFileSync(lock, 'utf8').trim());
    } catch {
      return; // no lock
    }
    if (!(Number.isInteger(pid) && pid > 0 && alive(pid))) {
      fs.rmSync(lock, { force: true });
      return;
    }
    if (pid !== dyingPid || Date.now() > until) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function lockRing(ringPath: string): () => void {
  const lock = `${ringPath}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(lock, 'wx');
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(lock, 'utf8').trim() === String(process.pid)) fs.rmSync(lock, { force: true });
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new RingLockError(`cannot create lock ${lock}: ${(e as Error).message}`);
      const pid = Number(fs.readFileSync(lock, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid) && pid !== process.pid) {
        throw new RingLockError(`ring ${ringPath} is already used by another spimstream (pid ${pid}, lock ${lock}); stop it first`);
      }
      fs.rmSync(lock, { force: true }); // stale: its owner is gone
    }
  }
  throw new RingLockError(`cannot lock ring ${ringPath}`);
}
