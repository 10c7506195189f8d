/**
 * The chunk and shard files of one array of an image (level 0, or a pyramid level): each z-block's
 * chunks go to their shards' temporary files as they arrive; a shard is finished (index, fsync,
 * rename) with its last block or at `flush`. Unsharded: one file per chunk, same discipline.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ShardFile } from './shard-file.js';
import { writeAll, type WriteMode } from './appender.js';
import { chunksPerShard, gridKey, tilesX, tilesY, zBlocks, type ArrayLayout } from './layout.js';
import { syncDir } from './dir-sync.js';

/** What the owning store provides: failure, completion and backlog accounting. */
export interface ArrayHost {
  fail(e: unknown, file: string, frames: number): void;
  shardDone(file: string, bytes: number, sha256: string): void;
  chunkDone(chunk: Uint8Array): void;
  track(job: Promise<void>): void;
  pending(delta: number): void;
  /** Settles when the metadata asked for so far is on disk: a shard is renamed into place only after it. */
  metadataWritten(): Promise<void>;
}

interface PendingShard {
  t: number;
  c: number;
  shard: ShardFile;
}

export class LevelArray {
  /** Shards being written, by storage key; t already includes the append offset. */
  private readonly pending = new Map<string, PendingShard>();
  private tmpSeq = 0;
  private readonly dirs = new Set<string>();

  constructor(
    readonly dir: string,
    readonly layout: ArrayLayout,
    readonly innerCodecs: Record<string, unknown>[],
    private readonly host: ArrayHost,
    private readonly mode: WriteMode,
  ) {}

  /**
   * The encoded inner chunks of z-block zb of (tt, c): tiles[ty * tilesX + tx], null or empty = all
   * fill value (not stored). `frames` are the frames behind the block (counted unstored on failure).
   */
  addBlock(tt: number, c: number, zb: number, tiles: (Uint8Array | null)[], frames: number): void {
    const l = this.layout;
    const done = (b: Uint8Array) => this.host.chunkDone(b);
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
      this.host.pending(bytes);
      this.host.track(shard.append(list, done).then(() => this.host.pending(-bytes)));
      if (shard.blocksReceived >= shard.blocksExpected) this.finishShard(key);
    }
  }

  private newShard(key: string, t: number, c: number, chunks: number, blocksExpected: number): PendingShard {
    const file = path.join(this.dir, key);
    // A unique temporary name: a shard key written again (a producer revisiting a timepoint) must not
    // share its temporary file with a finish still in flight.
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${++this.tmpSeq}`);
    const shard = new ShardFile(file, tmp, chunks, blocksExpected, (e, s) => this.host.fail(e, s.file, s.frames), this.mode);
    return { t, c, shard };
  }

  private finishShard(key: string): void {
    const { shard } = this.pending.get(key) as PendingShard;
    this.pending.delete(key);
    this.host.track(
      shard
        .finish(() => this.host.metadataWritten())
        .then((bytes) => {
          if (bytes > 0) this.host.shardDone(shard.file, bytes, shard.sha256);
        }),
    );
  }

  /**
   * After a failed write was resolved (space freed, remounted read-write): shards whose writing
   * failed are forgotten (their frames were counted unstored, their temporary files removed), so
   * later blocks of the same keys start new shards.
   */
  dropFailed(): void {
    for (const [key, p] of [...this.pending]) if (p.shard.failed) this.pending.delete(key);
  }

  /** Finishes every partial shard of timepoint tt (and channel c, when given; undefined = all). */
  flush(tt?: number, c?: number): void {
    for (const [key, p] of [...this.pending]) {
      if ((tt === undefined || p.t === tt) && (c === undefined || p.c === c)) this.finishShard(key);
    }
  }

  /** One unsharded chunk: temporary name, data synced, then renamed. */
  private writeFile(key: string, chunk: Uint8Array, frames: number): void {
    const file = path.join(this.dir, key);
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${++this.tmpSeq}`);
    const bytes = chunk.length;
    this.host.pending(bytes);
    this.host.track(
      (async () => {
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
          await this.host.metadataWritten();
          await fs.promises.rename(tmp, file);
          await syncDir(dir);
          this.host.shardDone(file, bytes, createHash('sha256').update(chunk).digest('hex'));
        } catch (e) {
          if (fh) await fh.close().catch(() => undefined);
          await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
          this.host.fail(e, file, frames);
        } finally {
          this.host.pending(-bytes);
          this.host.chunkDone(chunk);
        }
      })(),
    );
  }
}
