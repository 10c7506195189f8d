/**
 * Which waiting files may go now, and how many of them make one batch. The order is the store's
 * promise to a reader at the destination: shards first (as they are written, or once the acquisition
 * ends), then the finished store's metadata, and its manifest last, once everything else is verified.
 */
import type { FileState, StoreState } from './journal.js';

const BATCH_FILES = 256;
/**
 * A batch aims at ~10 s of transfer at the rate seen so far (8 MiB … 1 GiB): short enough that
 * progress is journaled often (little is sent twice after a crash), long enough that rclone's
 * start-up (~30 ms) and the check are a small share.
 */
const BATCH_SECONDS = 10;
const BATCH_MIN_BYTES = 8 * 2 ** 20;
const BATCH_MAX_BYTES = 2 ** 30;

/** Files that may go now, in queue order. `when`: 'shard' sends shards as written, 'acquisition' once the store is finished. */
export function eligibleFiles(pending: Iterable<FileState>, stores: ReadonlyMap<string, StoreState>, when: string): FileState[] {
  const byStore = new Map<string, { data: number; meta: number }>();
  const all = [...pending];
  for (const f of all) {
    if (f.verified) continue;
    const s = byStore.get(f.store) ?? { data: 0, meta: 0 };
    if (f.phase === 'data') s.data++;
    if (f.phase === 'metadata') s.meta++;
    byStore.set(f.store, s);
  }
  return all.filter((f) => {
    if (f.verified) return false;
    const finished = stores.get(f.store)?.finished ?? false;
    const s = byStore.get(f.store) ?? { data: 0, meta: 0 };
    if (f.phase === 'data') return when === 'shard' || finished;
    if (f.phase === 'metadata') return finished && s.data === 0;
    return finished && s.data === 0 && s.meta === 0;
  });
}

/** The next batch from the eligible files, at `rate` bytes per second of the last batch (0: none yet). */
export function pickBatch(ready: FileState[], rate: number): { pick: FileState[]; bytes: number } {
  const pick: FileState[] = [];
  let bytes = 0;
  const limit = Math.min(BATCH_MAX_BYTES, Math.max(BATCH_MIN_BYTES, rate * BATCH_SECONDS));
  for (const f of ready) {
    if (pick.length >= BATCH_FILES || (pick.length > 0 && bytes + f.bytes > limit)) break;
    pick.push(f);
    bytes += f.bytes;
  }
  return { pick, bytes };
}
