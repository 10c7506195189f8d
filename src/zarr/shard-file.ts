/**
 * One shard written piece by piece: each z-block's chunks are appended to a temporary file as soon
 * as they are encoded (so their buffers return to the pool within milliseconds instead of waiting
 * for the shard's last block), and the index is written and the file renamed to its final name only
 * when the shard is complete. A crash therefore leaves only whole shards under final names.
 * Operations on one shard run strictly in order; a failure aborts the shard and removes the file.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ShardIndex } from './shard-format.js';
import { syncDir } from './dir-sync.js';
import { DIRECT_ALIGN, openAppender, paddedInPlace, type Appender, type WriteMode } from './appender.js';

/**
 * Feeds parts to the hash one per event-loop turn, while their write runs in the thread pool: a
 * z-block's ~90 MB in one synchronous loop held the main thread for ~90 ms, and the frames that
 * arrived meanwhile reached the workers as one burst.
 */
export async function hashInTurns(hash: Pick<Hash, 'update'>, parts: Uint8Array[]): Promise<void> {
  for (const p of parts) {
    hash.update(p);
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** The zeros before a chunk that must start on a block boundary (never written to). */
const GAP = new Uint8Array(DIRECT_ALIGN);

export class ShardFile {
  private readonly index: ShardIndex;
  private out: Appender | null = null;
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
    private readonly mode: WriteMode,
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
      // Through O_DIRECT, a chunk in page-aligned memory (the output slab) is written from its slot:
      // it starts on a block boundary in the file and is padded with zeros to whole blocks (the
      // index gives its true length; readers never see the gaps). Anything else is appended as is.
      const padded = this.mode.direct ? paddedInPlace(c.bytes) : null;
      const gap = padded ? (DIRECT_ALIGN - (this.end % DIRECT_ALIGN)) % DIRECT_ALIGN : 0;
      if (gap > 0) parts.push(GAP.subarray(0, gap));
      this.end += gap;
      this.index.set(c.i, this.end, c.bytes.length);
      const part = padded ?? c.bytes;
      this.end += part.length;
      parts.push(part);
    }
    return this.enqueue(async () => {
      try {
        if (this.failed || parts.length === 0) return;
        this.out ??= await this.open();
        const write = this.out.append(parts);
        write.catch(() => undefined); // awaited below, after the hash
        await hashInTurns(this.hash, parts); // in file order: appends run strictly in order
        await write;
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
    return this.enqueue(async () => {
      if (this.failed) return;
      this.out ??= await this.open();
      const index = this.index.encode();
      await this.out.append([index]);
      this.hash.update(index);
      this.sha256 = this.hash.digest('hex');
      await this.out.finish(); // data before the name: a renamed shard is never empty or short after a power cut
      await this.out.close();
      this.out = null;
      await beforeRename?.();
      await fs.promises.rename(this.tmp, this.file);
      await syncDir(path.dirname(this.file));
      size = this.end + 16 * this.index.n + 4;
    }).then(() => size);
  }

  private async open(): Promise<Appender> {
    await fs.promises.mkdir(path.dirname(this.tmp), { recursive: true });
    return openAppender(this.tmp, this.mode);
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(op).catch(async (e: unknown) => {
      if (this.failed) return;
      this.failed = true;
      if (this.out) await this.out.close().catch(() => undefined);
      this.out = null;
      await fs.promises.rm(this.tmp, { force: true }).catch(() => undefined);
      this.onFail(e, this);
    });
    return this.chain;
  }
}
