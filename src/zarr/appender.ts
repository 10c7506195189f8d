/**
 * How a shard's bytes reach its temporary file: appended in order, then synced. Two ways:
 * - `DirectAppender` (storage.direct_io auto, the default where the file system allows it): O_DIRECT,
 *   bypassing the page cache. Bytes are copied into a page-aligned staging buffer (a
 *   WebAssembly.Memory: the only page-aligned memory JavaScript gets) and written in whole 4 KiB
 *   blocks; the tail goes padded and the file is truncated to its true length before the sync.
 *   Why: writing fresh page-cache pages cost this VM 2.3 kernel CPU-s per GB (0.35 when pages are
 *   recycled), O_DIRECT 0.02–0.04 (README, "Output writes"; in the pipeline bench/direct-io-bench.ts:
 *   0.3–0.95 CPU-s per raw GB less); a week of data also never evicts the rest of the page cache. A file system that refuses O_DIRECT (EINVAL at open: ramfs, tmpfs before
 *   Linux 6.6) gets buffered writes; one that refuses a write midway continues buffered at the
 *   same position — the optimisation never costs a shard.
 *   Parts that already lie in page-aligned memory on whole blocks (`pageAlignedBuffer`: the output
 *   slab's chunks, padded in place by ShardFile) are written from where they are, without the copy.
 * - `BufferedAppender`: ordinary writes through the page cache, in calls of at most WRITE_BYTES.
 */
import fs from 'node:fs';

/**
 * Bytes per write call. One writev of a whole z-block's chunks (~90 MB) cost the kernel 1.6 CPU s
 * per GB written on ext4 here, writes of <= 8 MiB 0.4, single 1.4 MB chunks 0.6
 * (bench/write-bench.ts, interleaved, after a warm-up round).
 */
export const WRITE_BYTES = 8 << 20;
/** O_DIRECT alignment of buffer address, file offset and length: 4 KiB suits 512 B and 4 KiB sectors. */
export const DIRECT_ALIGN = 4096;
const WASM_PAGE = 65536;

export interface Appender {
  /** Appends `parts` in order; on return their bytes are written or copied (the caller may reuse them). */
  append(parts: Uint8Array[]): Promise<void>;
  /** Everything appended is in the file, at its true length, and synced (fdatasync). */
  finish(): Promise<void>;
  close(): Promise<void>;
}

/** Buffers whose first byte is page-aligned (see `pageAlignedBuffer`). */
const pageAligned = new WeakSet<ArrayBufferLike>();

/**
 * A SharedArrayBuffer that starts on a page (a shared WebAssembly.Memory's: the only page-aligned
 * memory JavaScript gets), or null where the runtime refuses one that large. Its owner promises that
 * a view starting on a DIRECT_ALIGN boundary owns the bytes up to the next boundary after its end:
 * `paddedInPlace` may zero them, and such padded views go to disk without the staging copy.
 */
export function pageAlignedBuffer(bytes: number): SharedArrayBuffer | null {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  try {
    const buffer = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer;
    pageAligned.add(buffer);
    return buffer;
  } catch {
    return null;
  }
}

/** `bytes` rounded up to whole O_DIRECT blocks. */
export function wholeBlocks(bytes: number): number {
  return Math.ceil(bytes / DIRECT_ALIGN) * DIRECT_ALIGN;
}

/**
 * `chunk` extended to whole blocks with zeros written after it, when it lies in page-aligned memory
 * and starts on a block boundary (so it can be written through O_DIRECT where it is); else null.
 */
export function paddedInPlace(chunk: Uint8Array): Uint8Array | null {
  const end = chunk.byteOffset + wholeBlocks(chunk.length);
  if (!pageAligned.has(chunk.buffer) || chunk.byteOffset % DIRECT_ALIGN !== 0 || end > chunk.buffer.byteLength) return null;
  const padded = new Uint8Array(chunk.buffer, chunk.byteOffset, end - chunk.byteOffset);
  padded.fill(0, chunk.length);
  return padded;
}

/** True when `p` can go through O_DIRECT as it is: page-aligned memory, whole blocks at a block boundary. */
function inPlace(p: Uint8Array, align: number): boolean {
  return pageAligned.has(p.buffer) && p.byteOffset % align === 0 && p.length % align === 0 && p.length > 0;
}

/** Whether a store's shards go through O_DIRECT; switched off for good at the first refusal. */
export class WriteMode {
  private said = false;
  constructor(
    public direct: boolean,
    private readonly report: (direct: boolean, msg: string) => void = () => undefined,
  ) {}
  /** The file system refused O_DIRECT: buffered from now on (said once). */
  refused(why: string): void {
    if (!this.direct) return;
    this.direct = false;
    this.report(false, `storage writes go through the page cache: the output file system refused O_DIRECT (${why})`);
  }
  /** O_DIRECT worked for a shard (said once per store). */
  worked(): void {
    if (this.said) return;
    this.said = true;
    this.report(true, 'storage writes bypass the page cache (O_DIRECT, 4 KiB-aligned)');
  }
}

/** Opens `file` for appending the way `mode` says (falling back to buffered where O_DIRECT is refused). */
export async function openAppender(file: string, mode: WriteMode): Promise<Appender> {
  // macOS and Windows have no O_DIRECT flag (the bitwise OR would silently drop it).
  if (mode.direct && fs.constants.O_DIRECT === undefined) mode.refused('O_DIRECT does not exist on this platform');
  if (mode.direct) {
    try {
      const fh = await fs.promises.open(
        file,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_DIRECT,
        0o644,
      );
      mode.worked();
      return new DirectAppender(fh, file, mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      mode.refused('EINVAL at open');
    }
  }
  return new BufferedAppender(await fs.promises.open(file, 'w'));
}

export class BufferedAppender implements Appender {
  constructor(private readonly fh: fs.promises.FileHandle) {}
  async append(parts: Uint8Array[]): Promise<void> {
    await writeAll(this.fh, parts, null);
  }
  finish(): Promise<void> {
    return this.fh.datasync();
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Page-aligned staging buffers, reused: one per shard being written through O_DIRECT. */
const stages: Uint8Array[] = [];
function takeStage(): Uint8Array {
  return (
    stages.pop() ?? new Uint8Array(new WebAssembly.Memory({ initial: WRITE_BYTES / WASM_PAGE, maximum: WRITE_BYTES / WASM_PAGE }).buffer)
  );
}

export class DirectAppender implements Appender {
  private stage: Uint8Array | null = takeStage();
  /** Bytes staged; stage[0] belongs at file offset `pos` (a multiple of DIRECT_ALIGN while direct). */
  private fill = 0;
  private pos = 0;
  private direct = true;
  /** Bytes written from the callers' memory, without the staging copy. */
  writtenInPlace = 0;

  /** `align`: DIRECT_ALIGN (a test passes 1 to make the kernel refuse a write midway). */
  constructor(
    private fh: fs.promises.FileHandle,
    private readonly file: string,
    private readonly mode: WriteMode,
    private readonly align = DIRECT_ALIGN,
  ) {}

  async append(parts: Uint8Array[]): Promise<void> {
    const stage = this.buffer();
    for (const p of parts) {
      if (this.direct && this.fill % this.align === 0 && inPlace(p, this.align)) {
        // Whatever is staged is whole blocks too: it goes first, then the part from where it lies.
        if (this.fill > 0) await this.writeAt(stage.subarray(0, this.fill), this.pos);
        this.pos += this.fill;
        this.fill = 0;
        await this.writeAt(p, this.pos);
        this.pos += p.length;
        this.writtenInPlace += p.length;
        continue;
      }
      for (let o = 0; o < p.length; ) {
        const n = Math.min(p.length - o, stage.length - this.fill);
        stage.set(p.subarray(o, o + n), this.fill);
        this.fill += n;
        o += n;
        if (this.fill === stage.length) await this.writeWhole();
      }
    }
  }

  async finish(): Promise<void> {
    const stage = this.buffer();
    const length = this.pos + this.fill;
    if (this.fill > 0) {
      // The tail padded to a whole block (zeros), then cut back to the true length.
      const n = this.direct ? Math.ceil(this.fill / this.align) * this.align : this.fill;
      stage.fill(0, this.fill, n);
      await this.writeAt(stage.subarray(0, n), this.pos);
      this.pos = length;
      this.fill = 0;
    }
    await this.fh.truncate(length);
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    if (this.stage) stages.push(this.stage);
    this.stage = null;
    await this.fh.close();
  }

  private buffer(): Uint8Array {
    if (!this.stage) throw new Error(`${this.file}: appended after close`);
    return this.stage;
  }

  /** Writes the stage's whole blocks; the rest (< align) moves to its front. */
  private async writeWhole(): Promise<void> {
    const stage = this.buffer();
    const whole = this.fill - (this.fill % this.align);
    if (whole === 0) return;
    await this.writeAt(stage.subarray(0, whole), this.pos);
    this.pos += whole;
    stage.copyWithin(0, whole, this.fill);
    this.fill -= whole;
  }

  /** All of `buf` at `position`, looping over short writes; EINVAL mid-file: buffered from here on. */
  private async writeAt(buf: Uint8Array, position: number): Promise<void> {
    for (let done = 0; done < buf.length; ) {
      let n: number;
      try {
        ({ bytesWritten: n } = await this.fh.write(buf, done, buf.length - done, position + done));
      } catch (e) {
        if (!this.direct || (e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        await this.toBuffered('EINVAL on a write');
        continue;
      }
      if (n === 0) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
      done += n;
      // A short write that ends off a block boundary cannot go on through O_DIRECT.
      if (this.direct && done < buf.length && (position + done) % this.align !== 0)
        await this.toBuffered('a short write off a block boundary');
    }
  }

  private async toBuffered(why: string): Promise<void> {
    await this.fh.close();
    this.fh = await fs.promises.open(this.file, 'r+');
    this.direct = false;
    this.mode.refused(why);
  }
}

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
