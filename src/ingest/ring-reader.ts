/**
 * Consumer side of the ring. Node has no mmap, so slots are copied with positional reads
 * (one syscall for the slot header, one for the pixels straight into the destination, one to
 * re-check seq_begin). On tmpfs this is a page-cache memcpy: see README "Why pread, not mmap".
 */
import fs from 'node:fs';
import { H, S, HEADER_BYTES, SLOT_HEADER_BYTES, RingFormatError, parseRingHeader, type FrameMeta, type RingHeader } from './ring-layout.js';

export type ReadOutcome = 'ok' | 'not-yet' | 'overwritten';

export class RingReader {
  readonly header: RingHeader;
  /** The open ring file: handed to the ingest thread, which reads through it (see `onFd`). */
  readonly fd: number;
  private readonly small = new Uint8Array(SLOT_HEADER_BYTES);
  private readonly smallView = new DataView(this.small.buffer);

  private constructor(
    readonly path: string,
    fd: number,
    header: RingHeader,
    /** False for a reader on a descriptor its caller keeps (`onFd`): close() leaves it open. */
    private readonly ownsFd: boolean,
  ) {
    this.fd = fd;
    this.header = header;
  }

  /** Opens and validates a ring. Throws RingFormatError (one line, names the field) or a system error. */
  static open(path: string): RingReader {
    const fd = fs.openSync(path, 'r');
    try {
      return new RingReader(path, fd, RingReader.headerOf(path, fd), true);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /**
   * A reader on a ring file its caller keeps open as `fd` and closes after the reader's last read
   * (`close()` leaves it open). The ingest thread reads through the descriptor the attach validated
   * (the main thread closes it when the thread has exited): a ring its producer removes right
   * after its last frame is still read whole.
   */
  static onFd(path: string, fd: number): RingReader {
    return new RingReader(path, fd, RingReader.headerOf(path, fd), false);
  }

  private static headerOf(path: string, fd: number): RingHeader {
    const size = fs.fstatSync(fd).size;
    const buf = new Uint8Array(HEADER_BYTES);
    fs.readSync(fd, buf, 0, Math.min(HEADER_BYTES, size), 0);
    return parseRingHeader(buf, size, path);
  }

  /**
   * One positional read that must return every byte asked for. A short read means the file is
   * shorter than the ring it was attached as (truncated or recreated in place): the bytes are not
   * the producer's, so nothing read this way may become a frame. Detaches with the one-line error.
   */
  private readFull(dst: Uint8Array, length: number, pos: number): void {
    const got = fs.readSync(this.fd, dst, 0, length, pos);
    if (got !== length) {
      const size = fs.fstatSync(this.fd).size;
      throw new RingFormatError(
        this.path,
        'file size',
        `${size} bytes, shorter than the ${this.header.fileBytes} bytes attached (truncated or recreated while attached): read ${got} of ${length} bytes at offset ${pos}`,
      );
    }
  }

  private u64(pos: number): number {
    this.readFull(this.small, 8, pos);
    return Number(this.smallView.getBigUint64(0, true));
  }

  writeCount(): number {
    return this.u64(H.writeCount);
  }

  /** Acquisition id, state and first frame number, read together for boundary detection. */
  acquisitionState(): { id: number; state: number; firstFrame: number } {
    // Read until two reads agree: the producer writes first_frame, then id, then state, and one
    // pread is not atomic against those stores.
    const v = this.smallView;
    let prev = -1;
    for (let i = 0; i < 8; i++) {
      this.readFull(this.small, 40, H.acquisitionId);
      const sig = Number(v.getBigUint64(0, true)) * 4 + v.getUint32(8, true);
      if (sig === prev) break;
      prev = sig;
    }
    return {
      id: Number(v.getBigUint64(0, true)),
      state: v.getUint32(8, true),
      firstFrame: Number(v.getBigUint64(H.acquisitionFirstFrame - H.acquisitionId, true)),
    };
  }

  /**
   * Re-validates the header against the geometry this reader attached with. A producer that
   * restarts with another geometry, or a corrupted header, makes this throw RingFormatError.
   */
  revalidate(): void {
    const st = fs.fstatSync(this.fd);
    const size = st.size;
    // Cut while attached, even with no frame being read (the reader had caught up): the same one line.
    if (size < this.header.fileBytes) {
      throw new RingFormatError(
        this.path,
        'file size',
        `${size} bytes, shorter than the ${this.header.fileBytes} bytes attached (truncated or recreated while attached)`,
      );
    }
    // Replaced by a new file at the same path (the producer restarted): we would read the old one.
    let atPath: fs.Stats | null = null;
    try {
      atPath = fs.statSync(this.path);
    } catch {
      /* unlinked: the mapping we hold is still the producer's, if it is still writing */
    }
    if (atPath && (atPath.ino !== st.ino || atPath.dev !== st.dev)) {
      throw new RingFormatError(
        this.path,
        'file',
        'recreated while attached (a new file at the path: spimstream attaches to it once this acquisition is finalized)',
      );
    }
    const buf = new Uint8Array(HEADER_BYTES);
    fs.readSync(this.fd, buf, 0, Math.min(HEADER_BYTES, size), 0);
    const h = parseRingHeader(buf, size, this.path);
    for (const k of ['width', 'height', 'dtype', 'slotCount', 'slotStride'] as const) {
      if (h[k] !== this.header[k]) {
        throw new RingFormatError(this.path, k, `changed while attached (${this.header[k]} -> ${h[k]})`);
      }
    }
  }

  /**
   * Reads the slot header of frame number n into `meta`. 'not-yet': the producer has not finished
   * frame n; 'overwritten': frame n is gone (count it as lost). On 'ok' call `readPixels` next.
   */
  readHeader(n: number, meta: FrameMeta): ReadOutcome {
    const h = this.header;
    const slotPos = HEADER_BYTES + (n % h.slotCount) * h.slotStride;
    this.readFull(this.small, SLOT_HEADER_BYTES, slotPos);
    const v = this.smallView;
    const end = Number(v.getBigUint64(S.seqEnd, true));
    const begin = Number(v.getBigUint64(S.seqBegin, true));
    if (end < n + 1 && begin <= n + 1) return 'not-yet';
    if (end !== n + 1 || begin !== n + 1) return 'overwritten';
    const payload = v.getUint32(S.payloadBytes, true);
    const w = v.getUint32(S.width, true);
    const ht = v.getUint32(S.height, true);
    if (payload !== h.frameBytes || w !== h.width || ht !== h.height) {
      throw new RingFormatError(
        this.path,
        `slot ${n % h.slotCount} geometry`,
        `frame ${n} says ${w}x${ht} (${payload} bytes), header says ${h.width}x${h.height} (${h.frameBytes} bytes)`,
      );
    }
    meta.seq = n;
    meta.cameraCounter = Number(v.getBigUint64(S.cameraCounter, true));
    meta.timestampNs = Number(v.getBigUint64(S.timestampNs, true));
    meta.t = v.getUint32(S.t, true);
    meta.c = v.getUint32(S.c, true);
    meta.z = v.getUint32(S.z, true);
    meta.view = v.getUint32(S.view, true);
    meta.flags = v.getUint32(S.flags, true);
    return 'ok';
  }

  /**
   * Copies the pixels of frame n (after `readHeader` said 'ok') into dst. Returns false when the
   * producer began overwriting the slot during the copy (torn): the copy must be discarded.
   */
  readPixels(n: number, dst: Uint8Array): boolean {
    const h = this.header;
    const slotPos = HEADER_BYTES + (n % h.slotCount) * h.slotStride;
    this.readFull(dst, h.frameBytes, slotPos + SLOT_HEADER_BYTES);
    // The producer bumps seq_begin before touching pixels: unchanged means our copy is whole.
    // The file is checked again too: a truncation during the copy can leave a full-length read of
    // zero pages on some file systems, and a ring recreated in place has other inode contents.
    if (this.u64(slotPos + S.seqBegin) !== n + 1) return false;
    if (fs.fstatSync(this.fd).size < h.fileBytes) this.readFull(this.small, 8, h.fileBytes - 8);
    return this.u64(slotPos + S.seqEnd) === n + 1;
  }

  /** readHeader + readPixels in one call (tests, tools). */
  read(n: number, dst: Uint8Array, meta: FrameMeta): ReadOutcome {
    const r = this.readHeader(n, meta);
    if (r !== 'ok') return r;
    return this.readPixels(n, dst) ? 'ok' : 'overwritten';
  }

  close(): void {
    if (this.ownsFd) fs.closeSync(this.fd);
  }
}
