/**
 * One shard written piece by piece: each z-block's chunks are appended to a temporary file as soon
 * as they are encoded (so their buffers return to the pool within milliseconds instead of waiting
 * for the shard's last block), and the index is written and the file renamed to its final name only
 * when the shard is complete. A crash therefore leaves only whole shards under final names.
 * Operations on one shard run strictly in order; a failure aborts the shard and removes the file.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ShardIndex } from './shard-format.js';
import { syncDir } from './dir-sync.js';

/**
 * Bytes per write call. One writev of a whole z-block's chunks (~90 MB) cost the kernel 1.6 CPU s
 * per GB written on ext4 here, writes of <= 8 MiB 0.4, single 1.4 MB chunks 0.6
 * (bench/write-bench.ts, interleaved, after a warm-up round).
 */
export const WRITE_BYTES = 8 << 20;

/**
 * Writes all of `parts` at `position` (null: the file position) in calls of at most WRITE_BYTES,
 * looping over short writes (a full disk may write short without throwing).
 */
export async function writeAll(fh: fs.promises.FileHandle, parts: Uint8Array[], position: number | null): Promise<number> {
  let done = 0;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  for (const p of parts) {
    for (let o = 0; o < p.length; ) {
      const piece = p.subarray(o, o + Math.min(p.length - o, WRITE_BYTES - batchBytes));
      batch.push(piece);
      batchBytes += piece.length;
      o += piece.length;
      if (batchBytes === WRITE_BYTES) {
        done += await writeBatch(fh, batch, position === null ? null : position + done);
        batch = [];
        batchBytes = 0;
      }
    }
  }
  if (batch.length > 0) done += await writeBatch(fh, batch, position === null ? null : position + done);
  return done;
}

async function writeBatch(fh: fs.promises.FileHandle, parts: Uint8Array[], position: number | null): Promise<number> {
  const total = parts.reduce((s, b) => s + b.length, 0);
  let done = 0;
  let rest = parts;
  while (done < total) {
    const { bytesWritten } = await fh.writev(rest, position === null ? undefined : position + done);
    if (bytesWritten === 0) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
    done += bytesWritten;
    rest = remaining(parts, done);
  }
  return total;
}

/** The parts of `parts` after the first `skip` bytes. */
function remaining(parts: Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let k = skip;
  for (const p of parts) {
    if (k >= p.length) {
      k -= p.length;
      continue;
    }
    out.push(k > 0 ? p.subarray(k) : p);
    k = 0;
  }
  return out;
}

export class ShardFile {
  private readonly index: ShardIndex;
  private fh: fs.promises.FileHandle | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** Bytes of chunks queued so far (the next chunk's offset). */
  private end = 0;
  failed = false;
  /** Frames whose chunks went into this shard (reported as unstored if it fails). */
  frames = 0;
  blocksReceived = 0;
  /** SHA-256 of the file as renamed into place (hashed while written: the manifest needs no re-read). */
  sha256 = '';
  private readonly hash = createHash('sha256');

  constructor(
    readonly file: string,
    private readonly tmp: string,
    chunks: number,
    readonly blocksExpected: number,
    private readonly onFail: (e: unknown, shard: ShardFile) => void,
  ) {
    this.index = new ShardIndex(chunks);
  }

  /**
   * Queues inner chunks (index in the shard, encoded bytes) for appending; `written` is called with
   * each chunk once it is on disk or dropped. Resolves when done (never rejects).
   */
  append(chunks: { i: number; bytes: Uint8Array }[], written: (bytes: Uint8Array) => void): Promise<void> {
    const parts: Uint8Array[] = [];
    for (const c of chunks) {
      this.index.set(c.i, this.end, c.bytes.length);
      this.end += c.bytes.length;
      parts.push(c.bytes);
    }
    return this.then(async () => {
      try {
        if (this.failed || parts.length === 0) return;
        this.fh ??= await this.open();
        await writeAll(this.fh, parts, null);
        for (const p of parts) this.hash.update(p); // in file order: appends run strictly in order
      } finally {
        for (const p of parts) written(p);
      }
    });
  }

  /**
   * Writes the index, closes and renames the shard to its final name (after `beforeRename`: the
   * metadata that covers it). Resolves to its size, or 0 on failure.
   */
  finish(beforeRename?: () => Promise<void>): Promise<number> {
    let size = 0;
    return this.then(async () => {
      if (this.failed) return;
      this.fh ??= await this.open();
      const index = this.index.encode();
      await writeAll(this.fh, [index], null);
      this.hash.update(index);
      this.sha256 = this.hash.digest('hex');
      await this.fh.datasync(); // data before the name: a renamed shard is never empty or short after a power cut
      await this.fh.close();
      this.fh = null;
      await beforeRename?.();
      await fs.promises.rename(this.tmp, this.file);
      await syncDir(path.dirname(this.file));
      size = this.end + 16 * this.index.n + 4;
    }).then(() => size);
  }

  private async open(): Promise<fs.promises.FileHandle> {
    await fs.promises.mkdir(path.dirname(this.tmp), { recursive: true });
    return fs.promises.open(this.tmp, 'w');
  }

  private then(op: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(op).catch(async (e: unknown) => {
      if (this.failed) return;
      this.failed = true;
      if (this.fh) await this.fh.close().catch(() => undefined);
      this.fh = null;
      await fs.promises.rm(this.tmp, { force: true }).catch(() => undefined);
      this.onFail(e, this);
    });
    return this.chain;
  }
}
