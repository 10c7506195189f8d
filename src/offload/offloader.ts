/**
 * Continuous, verified offload of finished files to `offload.destination` (an OffloadDestination:
 * rclone today, destination.ts).
 * Subscribes to the pipeline's events: a shard renamed into place is final (immutable) and is
 * queued at once (`when: shard`) or when its acquisition ends (`when: acquisition`); when the
 * manifest is written the store's metadata and report follow its shards, and the manifest goes
 * last, once everything else is verified there — a reader at the destination never sees a store
 * marked complete that is not. Every step is journaled durably (journal.ts); with `delete_local`
 * a local file is removed only after its verified copy exists. Failures back off (1 s … 60 s) and
 * retry forever; the local data stays; `offload_stalled` fires when nothing is verified for
 * `offload.stall_seconds` while files wait.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { EventBus } from '../pipeline/events.js';
import { eligibleFiles, pickBatch } from './batch-plan.js';
import { Journal, type FilePhase, type FileState, type JournalEntry } from './journal.js';
import { deleteVerifiedLocal } from './local-delete.js';
import { MANIFEST_NAME, storeFiles } from './manifest.js';
import { openDestination, type OffloadDestination } from './destination.js';
import { backlogOf, offloadStatus, offloadUrgent, type Backlog, type OffloadStatus, type VerifiedLog } from './offload-status.js';
import { verifyMethod, type VerifyHash } from './verify.js';
import { runOnComplete } from './on-complete.js';

const BACKOFF_MAX_MS = 60_000;
export class Offloader {
  private readonly journal: Journal;
  private readonly root: string;
  private readonly tmpDir: string;
  /** When each store's acquisition ended (for the hand-off's time to processed); dropped at hand-off. */
  private readonly endedAt = new Map<string, number>();
  private readonly dest: OffloadDestination;
  private verify: { hash: VerifyHash; readBack: boolean } | null = null;
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private nextTry = 0;
  private lastProgress = Date.now();
  private stalled = false;
  /** The backlog threatens the local disk: rclone runs at storing's priority (choosePriority). */
  private urgent = false;
  /** Bytes per second of the last successful batch (copy + check). */
  private rate = 0;
  private closed = false;
  /** Deletions of files verified before a restart (awaited before the journal closes). */
  private deleting: Promise<void> = Promise.resolve();
  private readonly verifiedLog: VerifiedLog = [];
  private readonly stallTimer: NodeJS.Timeout;

  constructor(
    private readonly cfg: Config,
    private readonly bus: EventBus,
  ) {
    this.root = path.resolve(cfg.storage.out);
    fs.mkdirSync(this.root, { recursive: true });
    const o = cfg.offload;
    this.journal = new Journal(this.root, o.delete_local, (durable, error) => {
      this.bus.emit('log', {
        level: durable ? 'warn' : 'error',
        msg: durable
          ? 'offload journal written again; verified local files are deleted now'
          : `offload journal cannot be written (${error}): offload goes on, progress is kept in memory and no local file is deleted until it is written`,
      });
      if (durable) void this.deleteVerified([...this.journal.pending.values()]);
    });
    // The batches' file lists and sum files live off the store's disk: a full data disk must not
    // stop the offload that frees it.
    this.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spimstream-offload-'));
    this.dest = openDestination(cfg, this.tmpDir);
    bus.on('shard-written', (e) => this.queue([{ abs: e.path, phase: 'data' }]));
    bus.on('manifest-written', (e) => {
      this.endedAt.set(path.relative(this.root, e.storePath), Date.now());
      this.storeFinished(e.storePath);
    });
    this.adoptInterrupted();
    // Files verified before a crash whose local copy was not yet deleted: delete now.
    this.deleting = this.deleteVerified([...this.journal.pending.values()]);
    const waiting = this.journal.pending.size;
    if (waiting > 0)
      bus.emit('log', {
        level: 'info',
        msg: `offload: resuming ${waiting} files from the journal`,
        fields: { destination: o.destination },
      });
    this.stallTimer = setInterval(() => {
      if (!this.journal.durable) this.journal.record([]); // the disk had no room: try again
      this.checkStall();
    }, 1000);
    this.stallTimer.unref();
    bus.emit('alert', { name: 'offload_stalled', stream: null, active: false, message: 'offload is keeping up', value: 0 });
    void this.probe();
  }

  /**
   * Stores in the journal that never finished belong to a sidecar that was killed mid-acquisition:
   * their shards on disk are complete (renamed only when whole) and their metadata valid, so all of
   * it goes — but no manifest (the acquisition did not complete; none was written).
   */
  private adoptInterrupted(): void {
    for (const { store, finished } of [...this.journal.stores.values()]) {
      if (finished) continue;
      const dir = path.join(this.root, store);
      if (!fs.existsSync(dir)) continue;
      this.bus.emit('log', {
        level: 'warn',
        msg: `offload: store ${store} was interrupted (spimstream stopped without finishing it): its files are offloaded, without a manifest`,
      });
      this.queue(this.storeFiles(dir));
      this.journal.record([{ e: 'store-finished', store, at: Date.now() }]);
    }
  }

  /** One line at start when the destination cannot be reached (offload retries meanwhile). */
  private async probe(): Promise<void> {
    const err = await this.dest.reachable();
    if (err)
      this.bus.emit('log', {
        level: 'error',
        msg: `offload destination ${this.dest.name} cannot be reached: ${err} (files are kept locally and retried)`,
      });
    else this.bus.emit('log', { level: 'info', msg: 'offload destination reachable', fields: { destination: this.dest.name } });
    this.kick();
  }

  private rel(abs: string): string {
    return path.relative(this.root, path.resolve(abs)).split(path.sep).join('/');
  }

  private storeOf(rel: string): string {
    return rel.split('/')[0];
  }

  private queue(files: { abs: string; phase: FilePhase }[]): void {
    const entries: JournalEntry[] = [];
    const now = Date.now();
    for (const { abs, phase } of files) {
      const f = this.rel(abs);
      if (f.startsWith('..') || this.journal.has(f, this.storeOf(f))) continue;
      let bytes = 0;
      try {
        bytes = fs.statSync(abs).size;
      } catch {
        continue; // gone already (not ours to offload)
      }
      entries.push({ e: 'queued', f, bytes, store: this.storeOf(f), phase, at: now });
    }
    this.journal.record(entries);
    this.kick();
  }

  /** A store's finished files but its manifest: chunks/shards are data, the rest metadata. */
  private storeFiles(dir: string): { abs: string; phase: FilePhase }[] {
    return storeFiles(dir).map((abs) => ({ abs, phase: /\/c\//.test(this.rel(abs)) ? 'data' : 'metadata' }));
  }

  /**
   * The manifest is written: the store's metadata and report follow its shards (queued as each was
   * written), the manifest comes last.
   */
  private storeFinished(storePath: string): void {
    const store = this.rel(storePath);
    const files = this.storeFiles(storePath).filter((f) => f.phase !== 'data' || !this.journal.stores.has(store));
    files.push({ abs: path.join(storePath, MANIFEST_NAME), phase: 'manifest' });
    this.queue(files);
    this.journal.record([{ e: 'store-finished', store, at: Date.now() }]);
    this.kick();
  }

  /** Files that may go now: shards (per `when`), then a finished store's metadata, then its manifest. */
  private eligible(): FileState[] {
    return eligibleFiles(this.journal.pending.values(), this.journal.stores, this.cfg.offload.when);
  }

  kick(): void {
    if (this.closed || this.running || this.timer) return;
    const wait = Math.max(0, this.nextTry - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.batch().finally(() => {
        this.running = null;
        if (this.eligible().length > 0) this.kick();
      });
    }, wait);
  }

  /** One batch; anything thrown (a local disk full, an I/O error) fails it like a refused copy: retried with backoff. */
  private async batch(): Promise<void> {
    const ready = this.eligible();
    if (ready.length === 0) return;
    const { pick, bytes } = pickBatch(ready, this.rate);
    try {
      await this.transfer(pick, bytes);
    } catch (e) {
      this.failed(pick, `local: ${(e as Error).message}`);
    }
  }

  private async transfer(pick: FileState[], bytes: number): Promise<void> {
    if (this.verify === null) {
      const h = await this.dest.hashes();
      if ('error' in h) return this.failed(pick, h.error);
      this.verify = verifyMethod(h.hashes);
      this.bus.emit('log', {
        level: 'info',
        msg: `offload verifies ${this.verify.readBack ? 'by reading every file back (the destination gives no hash spimstream can compute)' : `with ${this.verify.hash} hashes (the destination's against spimstream's of the local file)`}`,
        fields: { destination: this.dest.name },
      });
    }
    this.choosePriority();
    const t0 = performance.now();
    const r = await this.dest.copyAndVerify(
      this.root,
      pick.map((f) => f.f),
      bytes,
      this.verify,
    );
    if (r.verified.size > 0) this.rate = bytes / Math.max(0.001, (performance.now() - t0) / 1000);
    const done = pick.filter((f) => r.verified.has(f.f));
    const now = Date.now();
    const durable = this.journal.record(done.map((f) => ({ e: 'verified', f: f.f, at: now })));
    if (done.length > 0) {
      this.lastProgress = now;
      this.verifiedLog.push({ at: now, bytes: done.reduce((s, f) => s + f.bytes, 0) });
      this.bus.emit('offload-files', {
        result: 'verified',
        files: done.length,
        bytes: done.reduce((s, f) => s + f.bytes, 0),
        lagSeconds: (now - Math.min(...done.map((f) => f.queuedAt))) / 1000,
      });
    }
    if (durable) await this.deleteVerified(done);
    for (const f of done) if (f.phase === 'manifest') this.storeComplete(f.store);
    const missed = pick.filter((f) => !r.verified.has(f.f));
    if (missed.length > 0) return this.failed(missed, r.error ?? 'copied but not verified at the destination');
    this.failures = 0;
    this.nextTry = 0;
  }

  private failed(files: FileState[], message: string): void {
    this.failures++;
    const reason = this.dest.classify(message);
    this.nextTry = Date.now() + Math.min(BACKOFF_MAX_MS, 1000 * 2 ** (this.failures - 1));
    this.bus.emit('offload-files', { result: 'failed', files: files.length, bytes: files.reduce((s, f) => s + f.bytes, 0), lagSeconds: 0 });
    this.bus.emit('offload-failure', { reason, message });
    this.bus.emit('log', {
      level: this.failures === 1 || this.failures % 10 === 0 ? 'error' : 'warn',
      msg: `offload to ${this.dest.name} failed (${reason}): ${message}; ${files.length} files kept locally, retry in ${Math.round((this.nextTry - Date.now()) / 1000)} s`,
    });
  }

  /** Each file's `deleted` entry is journaled only once it is gone (local-delete.ts). */
  private async deleteVerified(files: FileState[]): Promise<void> {
    if (!this.cfg.offload.delete_local) return;
    this.journal.record(await deleteVerifiedLocal(this.root, files, (msg) => this.bus.emit('log', { level: 'warn', msg })));
  }

  private storeComplete(store: string): void {
    if (this.journal.stores.get(store)?.complete) return;
    this.journal.record([{ e: 'store-complete', store, at: Date.now() }]);
    const dest = `${this.dest.name.replace(/\/$/, '')}/${store}`;
    this.bus.emit('offload-complete', { store, destination: dest });
    this.bus.emit('log', {
      level: 'info',
      msg: 'offload complete: every file verified at the destination, manifest last',
      fields: { store, destination: dest },
    });
    if (this.cfg.offload.on_complete.length > 0) {
      void runOnComplete(
        this.cfg.offload.on_complete,
        this.cfg.offload.on_complete_timeout_s,
        {
          SPIMSTREAM_STORE: path.join(this.root, store),
          SPIMSTREAM_MANIFEST: path.join(this.root, store, MANIFEST_NAME),
          SPIMSTREAM_DESTINATION: dest,
        },
        this.bus,
        this.endedAt.get(store) ?? null,
      );
    }
    this.endedAt.delete(store);
  }

  /** Bytes queued and not yet verified, the age of the oldest such file (s), and whether offload runs at storing's priority. */
  backlog(): Backlog & { urgent: boolean } {
    return { ...backlogOf(this.journal.pending.values()), urgent: this.urgent };
  }

  /**
   * rclone yields to storing (nice 19) while the local disk holds the backlog easily. Once the free
   * space above the disk guard's margin is less than the backlog itself, a full disk — which stops
   * storing altogether — is nearer than any CPU shortage, so rclone runs at storing's priority
   * until free space is twice the backlog again. Only with delete_local (else offload frees nothing).
   */
  private choosePriority(): void {
    if (!this.cfg.offload.delete_local) return;
    let free: number;
    try {
      const st = fs.statfsSync(this.root);
      free = st.bavail * st.bsize - this.cfg.storage.min_free_bytes;
    } catch {
      return;
    }
    const backlog = this.backlog().bytes;
    const urgent = offloadUrgent(free, backlog, this.urgent);
    this.dest.setUrgent(urgent);
    if (urgent === this.urgent) return;
    this.urgent = urgent;
    const gb = (b: number) => `${(Math.max(0, b) / 1e9).toFixed(2)} GB`;
    this.bus.emit('log', {
      level: urgent ? 'warn' : 'info',
      msg: urgent
        ? `offload now runs at storing's priority: ${gb(free)} free on the local disk above storage.min_free_bytes, ${gb(backlog)} waiting to go (a full disk would stop storing)`
        : `offload yields to storing again: ${gb(free)} free on the local disk, ${gb(backlog)} waiting`,
    });
  }

  /** The backlog, the last minute's rate, the ETA, and the last `n` acquisitions' state (newest first). */
  status(n = 5): OffloadStatus {
    return offloadStatus(this.journal.pending.values(), this.journal.stores.values(), this.verifiedLog, this.stalled, this.urgent, n);
  }

  private checkStall(): void {
    const b = this.backlog();
    const stalled = b.files > 0 && this.eligible().length > 0 && Date.now() - this.lastProgress > this.cfg.offload.stall_seconds * 1000;
    if (stalled !== this.stalled) {
      this.stalled = stalled;
      this.bus.emit('alert', {
        name: 'offload_stalled',
        stream: null,
        active: stalled,
        value: b.lagSeconds,
        message: stalled
          ? `offload stalled: nothing verified at ${this.dest.name} for ${this.cfg.offload.stall_seconds} s; ${b.files} files (${(b.bytes / 1e9).toFixed(2)} GB) wait locally`
          : 'offload is moving again',
      });
    }
    if (!stalled && b.files === 0) this.lastProgress = Date.now();
  }

  /**
   * Stop: goes on offloading what may go (the last store's metadata and manifest) for at most
   * `graceMs` while the destination answers, then closes the journal; the rest resumes at the next start.
   */
  async stop(graceMs: number): Promise<void> {
    this.closed = true;
    clearInterval(this.stallTimer);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    const until = Date.now() + graceMs;
    while (this.eligible().length > 0 && Date.now() < until && this.failures === 0) await this.batch();
    await this.deleting;
    this.journal.close();
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
  }
}
