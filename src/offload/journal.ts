/**
 * The offload journal: an append-only JSON-lines file in the output folder recording, per file,
 * queued → verified → deleted, and per store, finished (its metadata and manifest may go) and
 * complete (the manifest is verified at the destination). Every append is fdatasync'ed before the
 * step it records is acted on, so after kill -9 or a power cut a restart resumes where it was: a
 * file not recorded verified is transferred and verified again (never counted done from a partial
 * remote copy), a local file is deleted only after its verified entry is on disk.
 *
 * Bounded for week-long runs (~130 k shards a day at 1600 MB/s): memory holds the files not yet
 * done (`pending`), the names of verified files of stores still acquiring (so a store adopted after
 * a crash does not send them again; ~100 B each) and one summary per store. The file is compacted
 * (temp, fdatasync, rename, directory fsync) at open and whenever it has grown to 4× its live
 * content, so it too stays proportional to what is not yet done.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileDurableSync } from '../zarr/dir-sync.js';

export const JOURNAL_NAME = '.spimstream-offload.jsonl';

/** Shards go first, then a store's metadata and report, then its manifest (last, once all else is verified). */
export type FilePhase = 'data' | 'metadata' | 'manifest';

/** One store's offload progress (what the page shows per acquisition). */
export interface StoreState {
  store: string;
  files: number;
  bytes: number;
  verifiedFiles: number;
  verifiedBytes: number;
  /** The acquisition ended (or was adopted after a crash): its metadata and manifest may go. */
  finished: boolean;
  /** Every file, the manifest last, is verified at the destination. */
  complete: boolean;
  firstAt: number;
  lastVerifiedAt: number;
}

export type JournalEntry =
  | { e: 'queued'; f: string; bytes: number; store: string; phase: FilePhase; at: number }
  | { e: 'verified'; f: string; at: number }
  /** The local copy is gone (kept: left in place on purpose, the manifest and the report). */
  | { e: 'deleted'; f: string; at: number; kept?: true }
  | { e: 'store-finished'; store: string; at: number }
  | { e: 'store-complete'; store: string; at: number }
  /** Written by compaction: a store's totals, and a verified file of a store still acquiring. */
  | ({ e: 'store' } & StoreState)
  | { e: 'done'; f: string; store: string };

export interface FileState {
  f: string;
  bytes: number;
  store: string;
  phase: FilePhase;
  queuedAt: number;
  verified: boolean;
}

/** Compaction runs when the file holds this many times its live lines (and at least MIN_LINES). */
const COMPACT_FACTOR = 4;
const COMPACT_MIN_LINES = 10_000;

export class Journal {
  private fd: number;
  private readonly file: string;
  /** Queued files not yet verified, and (keepVerified) verified ones not yet deleted, in queue order. */
  readonly pending = new Map<string, FileState>();
  readonly stores = new Map<string, StoreState>();
  /** Verified files of stores not yet finished, per store. */
  private readonly done = new Map<string, Set<string>>();
  private lines = 0;

  /** Recorded entries the disk refused (written first at the next record). */
  private unwritten: Buffer = Buffer.alloc(0);
  private failure: string | null = null;

  /**
   * Opens (creating) the journal in `dir`, replays it and compacts it. A torn last line (power cut)
   * is ignored: its step was never acted on. `keepVerified`: verified files stay pending until
   * their `deleted` entry (offload.delete_local).
   */
  constructor(
    dir: string,
    private readonly keepVerified: boolean,
    /** Called when appends start failing (with the error) and when they succeed again. */
    private readonly onDurability: (durable: boolean, error: string) => void = () => {},
  ) {
    this.file = path.join(dir, JOURNAL_NAME);
    if (fs.existsSync(this.file)) {
      for (const line of fs.readFileSync(this.file, 'utf8').split('\n')) {
        if (!line) continue;
        let j: JournalEntry;
        try {
          j = JSON.parse(line) as JournalEntry;
        } catch {
          continue;
        }
        this.apply(j);
      }
    }
    this.fd = -1;
    this.fd = this.compact();
  }

  /** A file this journal still knows (pending, or verified in a store still acquiring). */
  has(f: string, store: string): boolean {
    return this.pending.has(f) || (this.done.get(store)?.has(f) ?? false);
  }

  private storeState(store: string, at: number): StoreState {
    let s = this.stores.get(store);
    if (!s) {
      s = {
        store,
        files: 0,
        bytes: 0,
        verifiedFiles: 0,
        verifiedBytes: 0,
        finished: false,
        complete: false,
        firstAt: at,
        lastVerifiedAt: 0,
      };
      this.stores.set(store, s);
    }
    return s;
  }

  private apply(j: JournalEntry): void {
    switch (j.e) {
      case 'queued': {
        if (this.has(j.f, j.store)) return;
        this.pending.set(j.f, { f: j.f, bytes: j.bytes, store: j.store, phase: j.phase, queuedAt: j.at, verified: false });
        const s = this.storeState(j.store, j.at);
        s.files++;
        s.bytes += j.bytes;
        return;
      }
      case 'verified': {
        const p = this.pending.get(j.f);
        if (!p || p.verified) return;
        p.verified = true;
        const s = this.storeState(p.store, j.at);
        s.verifiedFiles++;
        s.verifiedBytes += p.bytes;
        s.lastVerifiedAt = j.at;
        if (!s.finished) this.doneSet(p.store).add(j.f);
        if (!this.keepVerified) this.pending.delete(j.f);
        return;
      }
      case 'deleted':
        this.pending.delete(j.f);
        return;
      case 'store-finished':
        this.storeState(j.store, j.at).finished = true;
        this.done.delete(j.store); // nothing of a finished store is queued again
        return;
      case 'store-complete':
        this.storeState(j.store, j.at).complete = true;
        return;
      case 'store': {
        const { e: _e, ...s } = j;
        this.stores.set(s.store, s);
        return;
      }
      case 'done':
        this.doneSet(j.store).add(j.f);
    }
  }

  private doneSet(store: string): Set<string> {
    let d = this.done.get(store);
    if (!d) this.done.set(store, (d = new Set()));
    return d;
  }

  /**
   * Appends entries in one write and makes them durable. When the disk refuses (ENOSPC, EIO) the
   * entries are still applied in memory, kept, and written first by the next call; it returns false
   * and `durable` stays false until then, and the caller acts on nothing that needs them on disk
   * (a verified file is not deleted meanwhile).
   */
  record(entries: JournalEntry[]): boolean {
    for (const j of entries) this.apply(j);
    this.lines += entries.length;
    if (entries.length > 0) {
      const add = Buffer.from(entries.map((j) => `${JSON.stringify(j)}\n`).join(''));
      this.unwritten = this.unwritten.length > 0 ? Buffer.concat([this.unwritten, add]) : add;
    }
    try {
      while (this.unwritten.length > 0) {
        const n = fs.writeSync(this.fd, this.unwritten);
        this.unwritten = this.unwritten.subarray(n); // a short write: the rest goes next, never twice
      }
      if (entries.length > 0 || this.failure !== null) fs.fdatasyncSync(this.fd);
    } catch (e) {
      const first = this.failure === null;
      this.failure = (e as Error).message;
      if (first) this.onDurability(false, this.failure);
      return false;
    }
    if (this.failure !== null) {
      this.failure = null;
      this.onDurability(true, '');
    }
    if (this.lines > COMPACT_MIN_LINES && this.lines > COMPACT_FACTOR * this.liveLines()) {
      try {
        this.fd = this.compact();
      } catch {
        /* the appended journal is intact; compaction is tried again at the next append */
      }
    }
    return true;
  }

  /** Everything recorded is on disk. */
  get durable(): boolean {
    return this.failure === null;
  }

  private liveLines(): number {
    let n = this.stores.size + this.pending.size;
    for (const d of this.done.values()) n += d.size;
    return n;
  }

  /** Rewrites the journal as its live content; returns the new append descriptor. */
  private compact(): number {
    const out: string[] = [];
    for (const p of this.pending.values()) {
      out.push(JSON.stringify({ e: 'queued', f: p.f, bytes: p.bytes, store: p.store, phase: p.phase, at: p.queuedAt }));
      if (p.verified) out.push(JSON.stringify({ e: 'verified', f: p.f, at: p.queuedAt }));
    }
    // After the pending files: a store's line sets its totals, which already count them.
    for (const s of this.stores.values()) out.push(JSON.stringify({ e: 'store', ...s }));
    for (const [store, d] of this.done) for (const f of d) out.push(JSON.stringify({ e: 'done', f, store }));
    writeFileDurableSync(this.file, out.map((l) => `${l}\n`).join(''), `${this.file}.tmp-${process.pid}`);
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.lines = out.length;
    return fs.openSync(this.file, 'a');
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
