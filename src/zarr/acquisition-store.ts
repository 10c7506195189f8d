/**
 * One OME-Zarr v3 image on disk for one acquisition. Metadata is written first; every shard (or
 * unsharded chunk) is written to a temporary name and renamed when complete, so a crash leaves only
 * whole files under final names. Writes are asynchronous and their backlog is bounded by the caller
 * (see `pendingBytes`). A failing disk (ENOSPC, EACCES, ...) turns storing off with a clear error;
 * the files already written stay valid.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { arrayMetadata, groupMetadata, type ImageMetadataInput } from './metadata.js';
import { ShardFile, writeAll } from './shard-file.js';
import { chunksPerShard, gridKey, tilesX, tilesY, zBlocks, type ArrayLayout } from './layout.js';
import { syncDir, writeFileDurableSync } from './dir-sync.js';

export class StoreError extends Error {
  constructor(msg: string, readonly code: string) {
    super(msg);
    this.name = 'StoreError';
  }
}

export interface StoreOptions {
  root: string;
  layout: ArrayLayout;
  dtype: 'uint8' | 'uint16';
  innerCodecs: Record<string, unknown>[];
  image: ImageMetadataInput;
  overwrite: boolean;
  append: boolean;
  onError: (e: StoreError, framesLost: number) => void;
  onShard: (file: string, bytes: number, sha256: string) => void;
  /** Called with every chunk handed to `addBlock` once it is on disk (or dropped): its buffer may be reused. */
  onChunkDone?: (chunk: Uint8Array) => void;
}

interface PendingShard {
  t: number;
  c: number;
  shard: ShardFile;
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
  const code = err?.code ?? 'EUNKNOWN';
  return new StoreError(`cannot ${what} ${p}: ${why[code] ?? err?.message ?? String(e)} (${code})`, code);
}

export class AcquisitionStore {
  readonly root: string;
  readonly arrayDir: string;
  bytesWritten = 0;
  pendingBytes = 0;
  shardsWritten = 0;
  failed: StoreError | null = null;
  private tMax = 0;
  /** Shards being written, by storage key; t already includes the append offset. */
  private readonly pending = new Map<string, PendingShard>();
  private tmpSeq = 0;
  private readonly dirs = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  private image: ImageMetadataInput;

  private constructor(private readonly o: StoreOptions) {
    this.root = o.root;
    this.arrayDir = path.join(o.root, '0');
    this.image = o.image;
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
      fs.mkdirSync(s.arrayDir, { recursive: true });
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

  private loadForAppend(): void {
    const file = path.join(this.arrayDir, 'zarr.json');
    let meta: { shape: number[]; data_type: string };
    try {
      meta = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof meta;
    } catch (e) {
      throw new StoreError(`cannot append to ${this.root}: ${file} is missing or not JSON (${(e as Error).message})`, 'EINVAL');
    }
    const want = this.o.layout.shape;
    if (meta.data_type !== this.o.dtype || meta.shape.length !== 5 || meta.shape.slice(1).some((v, i) => v !== want[i + 1])) {
      throw new StoreError(`cannot append to ${this.root}: its array is ${meta.data_type} ${JSON.stringify(meta.shape)}, the acquisition is ${this.o.dtype} ${JSON.stringify(want)} (t may differ)`, 'EINVAL');
    }
    this.timeOffset = meta.shape[0];
    this.tMax = meta.shape[0];
  }

  /** Appending continues the time axis after the existing timepoints. */
  timeOffset = 0;



  private writeJsonAtomic(file: string, doc: unknown): void {
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      writeFileDurableSync(file, `${JSON.stringify(doc, null, 2)}\n`, tmp);
    } catch (e) {
      fs.rmSync(tmp, { force: true }); // the previous zarr.json stays in place, whole
      throw e;
    }
  }

  private writeMetadataSync(): void {
    const l = this.o.layout;
    const shape: ArrayLayout['shape'] = [Math.max(1, this.tMax), l.shape[1], l.shape[2], l.shape[3], l.shape[4]];
    this.writeJsonAtomic(path.join(this.root, 'zarr.json'), groupMetadata(this.image));
    this.writeJsonAtomic(path.join(this.arrayDir, 'zarr.json'), arrayMetadata({ ...l, shape }, this.o.dtype, this.o.innerCodecs));
  }

  /** Grows the time axis before any data of timepoint t is written (metadata first). */
  ensureTimepoint(t: number): void {
    const tt = t + this.timeOffset;
    if (tt < this.tMax || this.failed) return;
    this.tMax = tt + 1;
    try {
      this.writeMetadataSync();
    } catch (e) {
      this.fail(describeFsError(e, 'update metadata of', this.root), 0);
    }
  }

  /** Replaces acquisition attributes (e.g. the metadata form) and rewrites the group metadata. */
  updateAttributes(patch: Record<string, unknown>): void {
    this.image = { ...this.image, acquisition: { ...this.image.acquisition, ...patch } };
    if (this.failed) return;
    try {
      this.writeMetadataSync();
    } catch (e) {
      this.fail(describeFsError(e, 'update metadata of', this.root), 0);
    }
  }


  private fail(e: StoreError, frames: number): void {
    if (!this.failed) this.failed = e;
    this.o.onError(e, frames);
  }

  /**
   * Hands over the encoded inner chunks of z-block zb of (t, c): tiles[ty * tilesX + tx], null = empty.
   * Sharded: the chunks are appended to their shards' temporary files now, and a shard is finished
   * (index, rename) with its last block or at `flush`. Unsharded: one file per chunk.
   */
  addBlock(t: number, c: number, zb: number, tiles: (Uint8Array | null)[], frames: number): void {
    const l = this.o.layout;
    const tt = t + this.timeOffset;
    const done = (b: Uint8Array) => this.o.onChunkDone?.(b);
    if (this.failed) {
      for (const b of tiles) if (b) done(b);
      this.o.onError(this.failed, frames);
      return;
    }
    const nty = tilesY(l);
    const ntx = tilesX(l);
    if (!l.shard) {
      for (let ty = 0; ty < nty; ty++) {
        for (let tx = 0; tx < ntx; tx++) {
          const b = tiles[ty * ntx + tx];
          if (b && b.length > 0) this.writeFile(gridKey([tt, c, zb, ty, tx]), b, 0);
          else if (b) done(b);
        }
      }
      return;
    }
    const [kz, ky, kx] = chunksPerShard(l);
    const sz = Math.floor(zb / kz);
    const nzb = zBlocks(l);
    const perShard = new Map<string, { i: number; bytes: Uint8Array }[]>();
    for (let ty = 0; ty < nty; ty++) {
      for (let tx = 0; tx < ntx; tx++) {
        const key = gridKey([tt, c, sz, Math.floor(ty / ky), Math.floor(tx / kx)]);
        if (!this.pending.has(key)) this.pending.set(key, this.newShard(key, tt, c, kz * ky * kx, Math.min(kz, nzb - sz * kz)));
        let list = perShard.get(key);
        if (!list) {
          list = [];
          perShard.set(key, list);
        }
        const b = tiles[ty * ntx + tx];
        if (b && b.length > 0) list.push({ i: ((zb % kz) * ky + (ty % ky)) * kx + (tx % kx), bytes: b });
        else if (b) done(b);
      }
    }
    for (const [key, list] of perShard) {
      const { shard } = this.pending.get(key) as PendingShard;
      shard.blocksReceived++;
      shard.frames += frames;
      const bytes = list.reduce((sum, x) => sum + x.bytes.length, 0);
      this.pendingBytes += bytes;
      this.track(shard.append(list, done).then(() => {
        this.pendingBytes -= bytes;
      }));
      if (shard.blocksReceived >= shard.blocksExpected) this.finishShard(key);
    }
  }

  private newShard(key: string, t: number, c: number, chunks: number, blocksExpected: number): PendingShard {
    const file = path.join(this.arrayDir, key);
    // A unique temporary name: a shard key written again (a producer revisiting a timepoint) must not
    // share its temporary file with a finish still in flight.
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${++this.tmpSeq}`);
    const shard = new ShardFile(file, tmp, chunks, blocksExpected,
      (e, s) => this.fail(describeFsError(e, 'write', s.file), s.frames));
    return { t, c, shard };
  }

  private finishShard(key: string): void {
    const { shard } = this.pending.get(key) as PendingShard;
    this.pending.delete(key);
    this.track(shard.finish().then((bytes) => {
      if (bytes === 0) return;
      this.bytesWritten += bytes;
      this.shardsWritten++;
      this.o.onShard(shard.file, bytes, shard.sha256);
    }));
  }

  /** Finishes every partial shard of timepoint t (and channel c, when given). */
  flush(t?: number, c?: number): void {
    for (const [key, p] of [...this.pending]) {
      if ((t === undefined || p.t === t + this.timeOffset) && (c === undefined || p.c === c)) this.finishShard(key);
    }
  }

  /** One unsharded chunk: temporary name, then renamed. */
  private writeFile(key: string, chunk: Uint8Array, frames: number): void {
    const file = path.join(this.arrayDir, key);
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${++this.tmpSeq}`);
    const bytes = chunk.length;
    this.pendingBytes += bytes;
    const job = (async () => {
      let fh: fs.promises.FileHandle | null = null;
      try {
        if (!this.dirs.has(dir)) {
          await fs.promises.mkdir(dir, { recursive: true });
          this.dirs.add(dir);
        }
        fh = await fs.promises.open(tmp, 'w');
        await writeAll(fh, [chunk], null);
        await fh.datasync();
        await fh.close();
        fh = null;
        await fs.promises.rename(tmp, file);
        await syncDir(dir);
        this.bytesWritten += bytes;
        this.shardsWritten++;
        this.o.onShard(file, bytes, createHash('sha256').update(chunk).digest('hex'));
      } catch (e) {
        if (fh) await fh.close().catch(() => undefined);
        await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
        this.fail(describeFsError(e, 'write', file), frames);
      } finally {
        this.pendingBytes -= bytes;
        this.o.onChunkDone?.(chunk);
      }
    })();
    this.track(job);
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
    if (!this.failed) {
      try {
        this.writeMetadataSync();
      } catch (e) {
        this.fail(describeFsError(e, 'finalize metadata of', this.root), 0);
      }
    }
  }
}
