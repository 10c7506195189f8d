/**
 * With `offload.delete_local`: removing the local copies of files verified at the destination. The
 * manifest and the QC report stay (they say where the data went and whether it is usable). Unlinks
 * run in libuv's pool: a 250 MB shard took 240 ms of ext4's time here, which on the main thread
 * would stall HTTP, previews and shard bookkeeping.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FileState, JournalEntry } from './journal.js';
import { REPORT_NAME } from './manifest.js';

/** Deletes the verified ones of `files` under `root`; returns a `deleted` entry for each file gone (or kept on purpose). */
export async function deleteVerifiedLocal(root: string, files: FileState[], warn: (msg: string) => void): Promise<JournalEntry[]> {
  const entries: JournalEntry[] = [];
  await Promise.all(
    files.map(async (f) => {
      if (!f.verified) return;
      if (f.phase === 'manifest' || f.f.endsWith(`/${REPORT_NAME}`)) {
        entries.push({ e: 'deleted', f: f.f, at: Date.now(), kept: true });
        return;
      }
      try {
        await fs.promises.rm(path.join(root, f.f), { force: true });
        entries.push({ e: 'deleted', f: f.f, at: Date.now() });
      } catch (e) {
        warn(`offload: cannot delete ${f.f} locally: ${(e as Error).message}`);
      }
    }),
  );
  return entries;
}
