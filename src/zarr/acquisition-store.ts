/**
 * One OME-Zarr v3 image on disk for one acquisition. Metadata is written first; every shard (or
 * unsharded chunk) is written to a temporary name and renamed when complete, so a crash leaves only
 * whole files under final names. Writes are asynchronous and their backlog is bounded by the caller
 * (see `pendingBytes`). A failing disk (ENOSPC, EACCES, ...) turns storing off with a clear error;
 * the files already written stay valid.
 */
import fs from 'node:fs';
import path from 'node:path';
import { arrayMetadata, groupMetadata, type ImageMetadataInput } from './metadata.js';
import { LevelArray, type ArrayHost } from './level-array.js';
import { WriteMode } from './appender.js';
import type { ArrayLayout } from './layout.js';
import { writeFileDurable, writeFileDurableSync } from './dir-sync.js';
import { appendProblems } from './append-check.js';

const metadataText = (doc: unknown): string => `${JSON.stringify(doc, null, 2)}\n`;

export class StoreError extends Error {
  constructor(
    msg: string,
    readonly code: string,
  ) {
    super(msg);
    this.name = 'StoreError';
  }
}

export interface StoreOptions {
  root: string;
  layout: ArrayLayout;
  /** The pyramid's levels 1..n (image.levels and image.downsample describe them in the group). */
  levels?: { layout: ArrayLayout; innerCodecs: Record<string, unknown>[] }[];
  dtype: 'uint8' | 'uint16';
  innerCodecs: Record<string, unknown>[];
  image: ImageMetadataInput;
  overwrite: boolean;
  append: boolean;
  onError: (e: StoreError, framesLost: number) => void;
  onShard: (file: string, bytes: number, sha256: string) => void;
  /** Called with every chunk handed to `addBlock` once it is on disk (or dropped): its buffer may be reused. */
  onChunkDone?: (chunk: Uint8Array) => void;
  /** Shards through O_DIRECT where the file system allows it (storage.direct_io auto); default buffered. */
  directIo?: boolean;
  /** Said once per store: whether its shards bypass the page cache, or why not. */
  onWriteMode?: (direct: boolean, message: string) => void;
}

/** The error code of writing into the nearest existing ancestor of p (null: writable, or unknown). */
function writeAccessCode(p: string): string | null {
  for (let d = path.dirname(p); ; d = path.dirname(d)) {
    if (fs.existsSync(d)) {
      try {
        fs.accessSync(d, fs.constants.W_OK);
        return null;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code ?? null;
      }
    }
    if (path.dirname(d) === d) return null;
  }
}

/** Describes a system error for a person: what failed, on which path, and why. */
export function describeFsError(e: unknown, what: string, p: string): StoreError {
  const err = e as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    ENOSPC: 'the disk is full',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'the file system is read-only',
    ENOTDIR: 'a parent of this path is a file, not a directory',
    EEXIST: 'it already exists',
    EDQUOT: 'the disk quota is exceeded',
    EIO: 'an I/O error occurred',
  };
  let code = err?.code ?? 'EUNKNOWN';
  // A recursive mkdir on a read-only file system can say ENOENT: ask the nearest existing folder.
  if (code === 'ENOENT') code = writeAccessCode(p) ?? code;
  return new StoreError(`cannot ${what} ${p}: ${why[code] ?? err?.message ?? String(e)} (${code})`, code);
}

export class AcquisitionStore {
  readonly root: string;
  readonly arrayDir: string;
  pendingBytes = 0;
  failed: StoreError | null = null;
  private tMax = 0;
  /** Level 0, then the pyramid's levels. */
  readonly arrays: LevelArray[];
  private readonly inflight = new Set<Promise<void>>();
  private image: ImageMetadataInput;

  private constructor(private readonly o: StoreOptions) {
    this.root = o.root;
    this.arrayDir = path.join(o.root, '0');
    this.image = o.image;
    const mode = new WriteMode(o.directIo ?? false, o.onWriteMode);
    const host: ArrayHost = {
      fail: (e, file, frames) => this.fail(describeFsError(e, 'write', file), frames),
      shardDone: (file, bytes, sha256) => {
        this.o.onShard(file, bytes, sha256);
      },
      chunkDone: (chunk) => this.o.onChunkDone?.(chunk),
      track: (job) => this.track(job),
      pending: (delta) => {
        this.pendingBytes += delta;
      },
      metadataWritten: () => this.metaWrite,
    };
    this.arrays = [{ layout: o.layout, innerCodecs: o.innerCodecs }, ...(o.levels ?? [])].map(
      (l, k) => new LevelArray(path.join(o.root, String(k)), l.layout, l.innerCodecs, host, mode),
    );
  }

  /** Creates the store directory and writes its metadata. Throws StoreError naming the path. */
  static create(o: StoreOptions): AcquisitionStore {
    const s = new AcquisitionStore(o);
    const parent = path.dirname(o.root);
    try {
      fs.mkdirSync(parent, { recursive: true });
    } catch (e) {
      throw describeFsError(e, 'create output directory', parent);
    }
    if (!fs.statSync(parent).isDirectory()) throw new StoreError(`output path ${parent} is not a directory`, 'ENOTDIR');
    try {
      // Checked up front: a recursive mkdir on a read-only file system reports a misleading ENOENT.
      fs.accessSync(parent, fs.constants.W_OK);
    } catch (e) {
      throw describeFsError(e, 'create store', o.root);
    }
    if (fs.existsSync(o.root)) {
      if (o.append) {
        s.loadForAppend();
      } else if (o.overwrite) {
        fs.rmSync(o.root, { recursive: true, force: true });
      } else {
        throw new StoreError(`store ${o.root} already exists; pass --overwrite to replace it or --append to continue it`, 'EEXIST');
      }
    }
    try {
      for (const a of s.arrays) fs.mkdirSync(a.dir, { recursive: true });
      fs.accessSync(s.arrayDir, fs.constants.W_OK);
    } catch (e) {
      throw describeFsError(e, 'create store', o.root);
    }
    try {
      s.writeMetadataSync();
    } catch (e) {
      throw describeFsError(e, 'write metadata of', o.root);
    }
    return s;
  }

  /** Continues an existing image only where this run writes exactly its arrays (append-check.ts). */
  private loadForAppend(): void {
    const file = path.join(this.arrayDir, 'zarr.json');
    let meta: { shape: number[] };
    try {
      meta = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof meta;
    } catch (e) {
      throw new StoreError(`cannot append to ${this.root}: ${file} is missing or not JSON (${(e as Error).message})`, 'EINVAL');
    }
    const want = this.arrays.map((a) => arrayMetadata(a.layout, this.o.dtype, a.innerCodecs));
    const problems = appendProblems(this.root, want, this.o.image.downsample ?? 'mean');
    if (problems.length > 0) throw new StoreError(`cannot append to ${this.root}: ${problems.join('; ')}`, 'EINVAL');
    this.timeOffset = meta.shape[0];
    this.tMax = meta.shape[0];
  }

  /** Appending continues the time axis after the existing timepoints. */
  timeOffset = 0;

  /** Every array before the group: the group never lists a level whose array does not exist yet. */
  private metadataDocs(): [string, unknown][] {
    const docs: [string, unknown][] = this.arrays.map((a) => {
      const l = a.layout;
      const shape: ArrayLayout['shape'] = [Math.max(1, this.tMax), l.shape[1], l.shape[2], l.shape[3], l.shape[4]];
      return [path.join(a.dir, 'zarr.json'), arrayMetadata({ ...l, shape }, this.o.dtype, a.innerCodecs)];
    });
    docs.push([path.join(this.root, 'zarr.json'), groupMetadata(this.image)]);
    return docs;
  }

  private writeMetadataSync(): void {
    for (const [file, doc] of this.metadataDocs()) writeFileDurableSync(file, metadataText(doc), `${file}.tmp-${process.pid}`);
  }

  /**
   * Grows the time axis before any data of timepoint t is renamed into place (metadata first: shards
   * wait for `metaWrite`). The write runs in the libuv pool: a synchronous fdatasync here held the
   * main thread for ~50 ms at every stack (measured with --cpu-prof at 450 MB/s).
   */
  ensureTimepoint(t: number): void {
    const tt = t + this.timeOffset;
    if (tt < this.tMax || this.failed) return;
    this.tMax = tt + 1;
    this.writeMetadataLater('update metadata of');
  }

  /**
   * Replaces acquisition attributes (e.g. the metadata form) and rewrites the group metadata;
   * settles once that is on disk (the page says "saved" only then).
   */
  updateAttributes(patch: Record<string, unknown>): Promise<void> {
    this.image = { ...this.image, acquisition: { ...this.image.acquisition, ...patch } };
    if (this.failed) return Promise.resolve();
    this.writeMetadataLater('update metadata of');
    return this.metaWrite;
  }

  /** Settles when every metadata write asked for so far is on disk (or failed: the store then fails). */
  private metaWrite: Promise<void> = Promise.resolve();
  private metaQueued = false;

  /** One write in flight, at most one queued behind it; the queued one writes the state of its start. */
  private writeMetadataLater(what: string): void {
    if (this.metaQueued) return;
    this.metaQueued = true;
    this.metaWrite = this.metaWrite.then(async () => {
      this.metaQueued = false;
      if (this.failed) return;
      try {
        for (const [file, doc] of this.metadataDocs()) await writeFileDurable(file, metadataText(doc), `${file}.tmp-${process.pid}`);
      } catch (e) {
        this.fail(describeFsError(e, what, this.root), 0);
      }
    });
    this.track(this.metaWrite);
  }

  /**
   * Tries storing again after a failure: a 1 MiB probe written, synced and removed beside the
   * shards. On success the store takes new blocks again (in new shards) and its metadata is
   * rewritten; the frames lost meanwhile were counted. Resolves whether the store is writable.
   */
  async recover(): Promise<boolean> {
    if (!this.failed) return true;
    const probe = path.join(this.arrayDir, `.probe-${process.pid}`);
    let fh: fs.promises.FileHandle | null = null;
    try {
      fh = await fs.promises.open(probe, 'w');
      await fh.write(Buffer.alloc(1 << 20));
      await fh.datasync();
    } catch {
      return false;
    } finally {
      await fh?.close().catch(() => undefined);
      await fs.promises.rm(probe, { force: true }).catch(() => undefined);
    }
    await this.drain(); // writes of the failed shards have settled
    this.failed = null;
    for (const a of this.arrays) a.dropFailed();
    this.writeMetadataLater('update metadata of');
    await this.metaWrite;
    return this.failed === null;
  }

  private fail(e: StoreError, frames: number): void {
    if (!this.failed) this.failed = e;
    this.o.onError(e, frames);
  }

  /**
   * Hands over the encoded inner chunks of z-block zb of (t, c) of array `level` (0 = full
   * resolution): tiles[ty * tilesX + tx], null = empty. See LevelArray.
   */
  addBlock(t: number, c: number, zb: number, tiles: (Uint8Array | null)[], frames: number, level = 0): void {
    if (this.failed) {
      for (const b of tiles) if (b) this.o.onChunkDone?.(b);
      this.o.onError(this.failed, frames);
      return;
    }
    this.arrays[level].addBlock(t + this.timeOffset, c, zb, tiles, frames);
  }

  /** Finishes every partial shard of timepoint t (and channel c, when given), in every level. */
  flush(t?: number, c?: number): void {
    for (const a of this.arrays) a.flush(t === undefined ? undefined : t + this.timeOffset, c);
  }

  private track(job: Promise<void>): void {
    this.inflight.add(job);
    void job.finally(() => this.inflight.delete(job));
  }

  /** Waits for every queued write. */
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  /** Flushes partial shards, waits for all writes and writes the final metadata. */
  async close(): Promise<void> {
    this.flush();
    await this.drain();
    await this.metaWrite;
    if (!this.failed) {
      try {
        this.writeMetadataSync();
      } catch (e) {
        this.fail(describeFsError(e, 'finalize metadata of', this.root), 0);
      }
    }
  }
}
