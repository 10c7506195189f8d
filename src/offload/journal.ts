/**
 * The offload journal: an append-only JSON-lines file in the output folder recording, per file,
 * queued → verified → deleted, and per store, finished (its metadata and manifest may go) and
 * complete (the manifest is verified at the destination). Every append is fdatasync'ed before the
 * step it records is acted on, so after kill -9 or a power cut a restart resumes where it was: a
 * file not recorded verified is transferred and verified again (never counted done from a partial
 * remote copy), a local file is deleted only after its verified entry is on disk.
 */
import fs from 'node:fs';
import path from 'node:path';

export const JOURNAL_NAME = '.spimstream-offload.jsonl';

export type JournalEntry =
  | { e: 'queued'; f: string; bytes: number; store: string; phase: FilePhase; at: number }
  | { e: 'verified'; f: string; at: number }
  | { e: 'deleted'; f: string; at: number }
  | { e: 'store-finished'; store: string; at: number }
  | { e: 'store-complete'; store: string; at: number };

/** Shards go first, then a store's metadata and report, then its manifest (last, once all else is verified). */
export type FilePhase = 'data' | 'metadata' | 'manifest';

export interface FileState {
  f: string;
  bytes: number;
  store: string;
  phase: FilePhase;
  queuedAt: number;
  verified: boolean;
  deleted: boolean;
}

export class Journal {
  private readonly fd: number;
  readonly files = new Map<string, FileState>();
  readonly finishedStores = new Set<string>();
  readonly completeStores = new Set<string>();

  /** Opens (creating) the journal in `dir` and replays it. A torn last line (power cut) is ignored. */
  constructor(dir: string) {
    const file = path.join(dir, JOURNAL_NAME);
    if (fs.existsSync(file)) {
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        if (!line) continue;
        let j: JournalEntry;
        try {
          j = JSON.parse(line) as JournalEntry;
        } catch {
          continue; // the write cut by a crash: its step was never acted on
        }
        this.apply(j);
      }
    }
    this.fd = fs.openSync(file, 'a');
  }

  private apply(j: JournalEntry): void {
    if (j.e === 'queued') {
      if (!this.files.has(j.f)) this.files.set(j.f, { f: j.f, bytes: j.bytes, store: j.store, phase: j.phase, queuedAt: j.at, verified: false, deleted: false });
    } else if (j.e === 'verified' || j.e === 'deleted') {
      const s = this.files.get(j.f);
      if (s && j.e === 'verified') s.verified = true;
      if (s && j.e === 'deleted') s.deleted = true;
    } else if (j.e === 'store-finished') this.finishedStores.add(j.store);
    else this.completeStores.add(j.store);
  }

  /** Appends entries in one write and makes them durable before returning. */
  record(entries: JournalEntry[]): void {
    if (entries.length === 0) return;
    fs.writeSync(this.fd, entries.map((j) => `${JSON.stringify(j)}\n`).join(''));
    fs.fdatasyncSync(this.fd);
    for (const j of entries) this.apply(j);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
