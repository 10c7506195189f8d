/**
 * Which acquisition of a ring a sidecar has already taken in: `<ring>.seen` holds the ring file's
 * identity (device and inode: a ring recreated at the same path is another ring) and the last
 * acquisition id that ended while attached. A sidecar that attaches after an acquisition finished
 * reads what is still in the ring — unless a sidecar before it already did (a restart must not
 * store the same acquisition twice). Markers whose ring is gone are removed (`pruneSeen`): a ring
 * recreated at the same path is another ring anyway, and /dev/shm is RAM.
 */
import fs from 'node:fs';
import path from 'node:path';

export function seenFile(ring: string): string {
  return `${ring}.seen`;
}

function identity(ring: string): string | null {
  try {
    const st = fs.statSync(ring);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** Removes the markers in the ring's folder whose ring file no longer exists. */
export function pruneSeen(ring: string): void {
  const dir = path.dirname(ring);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (n.endsWith('.seen') && !fs.existsSync(path.join(dir, n.slice(0, -5)))) fs.rmSync(path.join(dir, n), { force: true });
  }
}

/** Notes that acquisition `id` of this ring was taken in (best effort: /dev/shm may refuse). */
export function markSeen(ring: string, id: number): void {
  pruneSeen(ring);
  const ident = identity(ring);
  if (ident === null) return;
  try {
    fs.writeFileSync(seenFile(ring), `${JSON.stringify({ ring: ident, acquisition_id: id })}\n`);
  } catch {
    /* without the marker a restart may store the last acquisition again: never loses data */
  }
}

/** Whether acquisition `id` of the ring now at this path was already taken in. */
export function wasSeen(ring: string, id: number): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(seenFile(ring), 'utf8')) as { ring?: string; acquisition_id?: number };
    return m.ring === identity(ring) && m.acquisition_id === id;
  } catch {
    return false;
  }
}
