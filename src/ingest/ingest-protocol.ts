/**
 * What the ingest thread and the main thread say to each other. Messages go one way (ingest →
 * main), in ring order, in batches; commands go the other way through a shared Int32 word so a
 * sleeping ingest thread sees them without an event loop. Status words are shared Float64s the
 * main thread reads at any time (ring fill for /metrics stays current while main is busy).
 */
import type { FrameMeta, RingHeader } from './ring-layout.js';
import type { SharedSlotPool } from './slot-pool.js';

/**
 * Where reading starts, taken when the ring was first opened (the thread starts a little later;
 * see ring-ingest.ts startPosition): lateBefore -1 = none overwritten before we attached;
 * finishedId = the ring's acquisition had already finished (not ours).
 */
export interface IngestStartPosition {
  next: number;
  lateBefore: number;
  finishedId: number | null;
  /** An acquisition that finished before the attach, read from the ring now: what is in it, what was overwritten. */
  recovered?: { id: number; inRing: number; overwritten: number };
}

export type LossReason = 'overrun' | 'gap' | 'torn';

export type IngestMessage =
  /** priority: the nice value the thread runs at, null when raising it was not permitted. */
  | { k: 'attached'; header: RingHeader; priority: number | null }
  /** Frames from here on belong to acquisition `id` (until 'acq-end'). */
  | { k: 'acq-start'; id: number }
  /** The open acquisition is over: the producer said so, or a new one began. */
  | { k: 'acq-end'; id: number }
  /** A whole frame copied into pool buffer `slot` at `readAtMs` (ms since the epoch). */
  | { k: 'frame'; slot: number; meta: FrameMeta; readAtMs: number }
  | { k: 'lost'; reason: LossReason; count: number; atSeq: number; late: boolean }
  /**
   * Frames atSeq … atSeq+count−1 were published and skipped on purpose: every pool buffer was busy
   * and the ring more than 3/4 full, so the oldest were dropped before the producer could overwrite
   * them (received, not stored: unstored `frame-pool-full`, never an overrun).
   */
  | { k: 'shed'; count: number; atSeq: number }
  /** The ring went bad (one line): the thread has stopped and closed it. */
  | { k: 'error'; message: string }
  /** After a drain command: every frame published when it came has been read (or counted). */
  | { k: 'drained' };

export interface IngestStart {
  kind: 'spimstream-ingest';
  ringPath: string;
  /** The ring, open (read through it; the main thread closes it once the thread has exited). */
  fd: number;
  pool: SharedSlotPool;
  /** Int32 [CTL_COMMAND]. */
  control: SharedArrayBuffer;
  /** Float64, indices STATUS_*. */
  status: SharedArrayBuffer;
  /** The frame size the pool was made for: a ring that changed before the thread opened it is refused. */
  expectedFrameBytes: number;
  position: IngestStartPosition;
  /** The nice value to ask for (the ingest thread only). */
  priority: number;
}

/** Ahead of the process's other threads (workers, main) and of a same-priority CPU hog. */
export const INGEST_NICE = -10;

/** The control word: 0 while running, else one of the commands below. */
export const CTL_COMMAND = 0;
/** Read every frame published now (up to 10 s), post 'drained', stop. */
export const CMD_DRAIN = 1;
/** Stop at once. */
export const CMD_ABORT = 2;

/** Ring frames published but not yet read, over the slot count. */
export const STATUS_RING_FILL = 0;
/** Longest time between two polls since the main thread last zeroed it, ms. */
export const STATUS_MAX_POLL_GAP = 2;
/** Ring polls since the thread started. */
export const STATUS_POLLS = 3;
export const STATUS_WORDS = 4;
