/**
 * The ingest loop (runs alone in the ingest thread): polls the ring, copies each whole frame into a
 * free frame-pool buffer, and tells the main thread in ring order — frames, acquisition boundaries
 * and every frame lost (overrun, torn, camera-counter gap, "late" for frames overwritten before we
 * attached). It owns everything that is per ring: the read position, the acquisition seen last,
 * the seqlock checks. Nothing else runs on this thread, so no pause of the main thread can overrun
 * the ring; only a full frame pool (main or workers behind) makes frames wait in the ring.
 */
import type { RingReader } from './ring-reader.js';
import { STATE_ACQUIRING, STATE_FINISHED, type FrameMeta } from './ring-layout.js';
import type { SlotPool } from './slot-pool.js';
import {
  CMD_ABORT,
  CMD_DRAIN,
  CTL_COMMAND,
  STATUS_MAX_POLL_GAP,
  STATUS_POLLS,
  STATUS_RING_FILL,
  type IngestMessage,
  type IngestStartPosition,
  type LossReason,
} from './ingest-protocol.js';

/**
 * Joining a running acquisition: its frames still in the ring are read, the ones already
 * overwritten are counted (late). The same for an acquisition that finished before the attach,
 * unless `seen` says a sidecar took it in already. An idle ring: the next frame.
 */
export function startPosition(reader: RingReader, seen: (id: number) => boolean = () => false): IngestStartPosition {
  const acq = reader.acquisitionState();
  const wc = reader.writeCount();
  const slots = reader.header.slotCount;
  if (acq.state === STATE_ACQUIRING) return { next: Math.min(acq.firstFrame, wc), lateBefore: wc - slots, finishedId: null };
  if (acq.state === STATE_FINISHED && acq.id > 0 && acq.firstFrame < wc && !seen(acq.id)) {
    const overwritten = Math.max(0, wc - slots - acq.firstFrame);
    return {
      next: acq.firstFrame,
      lateBefore: wc - slots,
      finishedId: null,
      recovered: { id: acq.id, inRing: wc - acq.firstFrame - overwritten, overwritten },
    };
  }
  return { next: wc, lateBefore: -1, finishedId: acq.state === STATE_FINISHED ? acq.id : null };
}

/**
 * With every pool buffer busy, frames wait in the ring; past SHED_FROM of it the oldest are shed
 * down to SHED_TO, so that the ring never overflows while frames can be dropped by choice. Late
 * enough that a short stall (a producer that pauses between stacks) costs nothing.
 */
const SHED_FROM = 0.75;
const SHED_TO = 0.5;
/** Frames read per pass before the batch is posted (keeps messages small and frequent). */
const BATCH = 16;
/**
 * A new acquisition_id whose state still reads 2 (finished) and no frame since: the producer may be
 * between its `acquisition_id` and `state` stores (the protocol's order), preempted on a busy PC.
 * Only a finished state that holds this long, still without a frame, ends it (an empty acquisition).
 */
const EMPTY_FINISH_MS = 1000;
/**
 * How long a poll that found nothing sleeps: a quarter of the usual time between frames (smoothed
 * over the polls that found some), 1 to IDLE_POLL_MS ms; IDLE_POLL_MS after IDLE_AFTER_MS without a
 * frame (between stacks of a time-lapse, between acquisitions). Polling every millisecond cost the
 * idle ingest thread 3.3 % of a core on the 2-core VM (1.3 % at 5 ms), and at 60 frames/s it woke
 * 16 times per frame. A frame waits at most a quarter of the frame interval, never over 5 ms, in
 * the ring (a 4-slot ring at 200 frames/s holds 20 ms).
 */
const IDLE_AFTER_MS = 1000;
const IDLE_POLL_MS = 5;

export function pollSleepMs(sinceFrameMs: number, frameGapMs: number): number {
  if (sinceFrameMs > IDLE_AFTER_MS) return IDLE_POLL_MS;
  return Math.min(IDLE_POLL_MS, Math.max(1, frameGapMs / 4));
}

/** The smoothed time between polls that found frames, after one more (samples capped at 4 x IDLE_POLL_MS). */
export function nextFrameGapMs(frameGapMs: number, sampleMs: number): number {
  return frameGapMs + (Math.min(4 * IDLE_POLL_MS, sampleMs) - frameGapMs) / 4;
}

export class RingIngest {
  private next = 0;
  private lastSeq = -1;
  private lastCounter = -1;
  private acqId = -1;
  private acqOpen = false;
  /** `next` when the open acquisition started: beyond it, frames of this acquisition were read. */
  private acqStartNext = 0;
  /** When a finished state was first seen for the open acquisition with no frame read yet (-1: not). */
  private emptyFinishedSince = -1;
  private readonly finishedIds = new Set<number>();
  /** Ring frames below this were overwritten before we attached: overrun, but "late". */
  private lateBefore = -1;
  /** The highest write_count seen: frames below it never read are lost on a detach. */
  private publishedSeen = 0;
  /** A buffer taken for a frame that turned out torn: reused for the next frame. */
  private spare = -1;
  private lastRevalidate = performance.now();
  private lastPoll = performance.now();
  private lastProgress = performance.now();
  private frameGapMs = 1;
  private out: IngestMessage[] = [];
  private readonly meta: FrameMeta = { seq: 0, cameraCounter: 0, timestampNs: 0, t: 0, c: 0, z: 0, view: 0, flags: 0 };

  constructor(
    private readonly reader: RingReader,
    private readonly pool: SlotPool,
    private readonly control: Int32Array,
    private readonly status: Float64Array,
    private readonly post: (batch: IngestMessage[]) => void,
    start: IngestStartPosition,
    priority: number | null = null,
  ) {
    this.next = start.next;
    this.lateBefore = start.lateBefore;
    if (start.finishedId !== null) {
      this.acqId = start.finishedId;
      this.finishedIds.add(start.finishedId);
    }
    this.out.push({ k: 'attached', header: reader.header, priority });
    this.flush();
  }

  /** Polls until told to stop or the ring goes bad; returns after the last message is posted. */
  run(): void {
    for (;;) {
      const cmd = Atomics.load(this.control, CTL_COMMAND);
      if (cmd === CMD_ABORT) break;
      if (cmd === CMD_DRAIN) {
        this.drain();
        break;
      }
      let progressed: boolean;
      try {
        progressed = this.tick();
      } catch (e) {
        this.fail(e);
        return;
      }
      this.flush();
      if (progressed) {
        this.frameGapMs = nextFrameGapMs(this.frameGapMs, this.lastPoll - this.lastProgress);
        this.lastProgress = this.lastPoll;
      } else this.pool.sleep(pollSleepMs(this.lastPoll - this.lastProgress, this.frameGapMs));
    }
    this.flush();
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const batch = this.out;
    this.out = [];
    this.post(batch);
  }

  private notePoll(): void {
    const now = performance.now();
    const gap = now - this.lastPoll;
    this.lastPoll = now;
    this.status[STATUS_POLLS]++;
    if (gap > this.status[STATUS_MAX_POLL_GAP]) this.status[STATUS_MAX_POLL_GAP] = gap;
  }

  /** One pass: acquisition boundaries, then up to BATCH frames. True when anything was read. */
  private tick(): boolean {
    this.notePoll();
    const reader = this.reader;
    if (this.lastPoll - this.lastRevalidate > 1000) {
      this.lastRevalidate = this.lastPoll;
      reader.revalidate();
    }
    // write_count first, then the acquisition: the producer writes first_frame, id and state
    // before an acquisition's first frame, so no frame below `wc` is read with a stale state.
    const wc = reader.writeCount();
    const acq = reader.acquisitionState();
    const isNew = acq.id > 0 && acq.id !== this.acqId;
    if (isNew && this.next < Math.min(wc, acq.firstFrame)) {
      // Frames published before the new acquisition began belong to the open one (or to none).
      return this.readAvailable(Math.min(wc, acq.firstFrame));
    }
    if (this.acqOpen && acq.id !== this.acqId) this.endAcquisition();
    if (!this.acqOpen && (isNew || (!this.finishedIds.has(acq.id) && wc > this.next))) {
      this.acqId = acq.id;
      this.acqOpen = true;
      this.acqStartNext = this.next;
      this.emptyFinishedSince = -1;
      this.lastSeq = -1; // camera-counter gaps are counted within an acquisition
      this.out.push({ k: 'acq-start', id: acq.id });
    }
    const progressed = this.readAvailable(wc);
    if (acq.state !== STATE_FINISHED) this.emptyFinishedSince = -1;
    if (this.acqOpen && this.next >= reader.writeCount() && acq.state === STATE_FINISHED && this.finishHolds()) {
      this.finishedIds.add(this.acqId);
      this.endAcquisition();
    }
    return progressed;
  }

  /**
   * A finished state ends the open acquisition once frames of it were read (the producer stores
   * `state = 2` only after them), or, without any, once it has held EMPTY_FINISH_MS.
   */
  private finishHolds(): boolean {
    if (this.next > this.acqStartNext) return true;
    if (this.emptyFinishedSince < 0) this.emptyFinishedSince = this.lastPoll;
    return this.lastPoll - this.emptyFinishedSince >= EMPTY_FINISH_MS;
  }

  private endAcquisition(): void {
    this.acqOpen = false;
    this.out.push({ k: 'acq-end', id: this.acqId });
  }

  private lose(reason: LossReason, count: number, atSeq: number): void {
    if (count <= 0) return;
    if (reason === 'overrun' && atSeq < this.lateBefore) {
      const late = Math.min(count, this.lateBefore - atSeq);
      this.out.push({ k: 'lost', reason, count: late, atSeq, late: true });
      count -= late;
      atSeq += late;
      if (count <= 0) return;
    }
    this.out.push({ k: 'lost', reason, count, atSeq, late: false });
  }

  /** Reads frames below `limit` (at most BATCH); true when any frame was read. */
  private readAvailable(limit: number): boolean {
    const reader = this.reader;
    const slots = reader.header.slotCount;
    const meta = this.meta;
    let wc = Math.min(limit, reader.writeCount());
    this.publishedSeen = Math.max(this.publishedSeen, wc);
    let read = 0;
    while (this.next < wc && read < BATCH) {
      const live = reader.writeCount();
      this.publishedSeen = Math.max(this.publishedSeen, live);
      if (live - this.next > slots) {
        const lostTo = live - slots;
        this.lose('overrun', lostTo - this.next, this.next);
        this.next = lostTo;
        if (this.next >= wc) break;
      }
      const r = reader.readHeader(this.next, meta);
      if (r === 'not-yet') break;
      if (r === 'overwritten') {
        this.lose('overrun', 1, this.next);
        this.next++;
        continue;
      }
      const slot = this.spare >= 0 ? this.spare : this.pool.acquire();
      this.spare = -1;
      if (slot < 0) {
        this.shed(live, Math.min(limit, live), slots);
        break;
      }
      let whole: boolean;
      try {
        whole = reader.readPixels(this.next, new Uint8Array(this.pool.frames, slot * this.pool.frameBytes, reader.header.frameBytes));
      } catch (e) {
        // The file shrank under the copy: the frame is discarded and counted, then we detach.
        this.spare = slot;
        this.lose('torn', 1, this.next);
        this.next++;
        throw e;
      }
      if (!whole) {
        this.spare = slot;
        this.lose('torn', 1, this.next);
        this.next++;
        continue;
      }
      this.next++;
      read++;
      if (this.lastSeq >= 0) this.lose('gap', meta.cameraCounter - this.lastCounter - (meta.seq - this.lastSeq), meta.seq);
      this.lastSeq = meta.seq;
      this.lastCounter = meta.cameraCounter;
      this.out.push({ k: 'frame', slot, meta: { ...meta }, readAtMs: Date.now() });
      if (this.next >= wc) {
        wc = Math.min(limit, reader.writeCount());
        this.publishedSeen = Math.max(this.publishedSeen, wc);
      }
    }
    this.status[STATUS_RING_FILL] = Math.min(1, Math.max(0, reader.writeCount() - this.next) / slots);
    return read > 0;
  }

  /** Every pool buffer busy: beyond SHED_FROM of the ring behind, skip the oldest frames (counted) down to SHED_TO. */
  private shed(live: number, upTo: number, slots: number): void {
    if (live - this.next <= slots * SHED_FROM) return;
    const count = Math.min(upTo, live - Math.floor(slots * SHED_TO)) - this.next;
    if (count <= 0) return;
    this.out.push({ k: 'shed', count, atSeq: this.next });
    this.next += count;
  }

  /** Stop: every frame published now is still read (or counted as overrun), for at most 10 s. */
  private drain(): void {
    try {
      const target = this.reader.writeCount();
      const until = Date.now() + 10_000;
      while (this.next < target && Date.now() < until) {
        this.notePoll();
        const progressed = this.readAvailable(target);
        this.flush();
        if (!progressed) this.pool.sleep(2);
      }
    } catch (e) {
      this.fail(e);
      return;
    }
    this.out.push({ k: 'drained' });
    this.flush();
  }

  /** The ring went bad: what was published and not read is lost (torn); one line to the main thread. */
  private fail(e: unknown): void {
    try {
      this.publishedSeen = Math.max(this.publishedSeen, this.reader.writeCount());
    } catch {
      // the header itself is gone: what was seen before is all we know
    }
    this.lose('torn', this.publishedSeen - this.next, this.next);
    this.next = Math.max(this.next, this.publishedSeen);
    this.out.push({ k: 'error', message: e instanceof Error ? e.message : String(e) });
    this.flush();
  }
}
