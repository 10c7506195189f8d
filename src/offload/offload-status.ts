/**
 * What the page and /api/status show of offload: the backlog (files, bytes, age of the oldest not
 * yet verified), the rate verified over the last minute, the backlog's ETA at that rate, and each
 * recent acquisition's state. Pure functions of the journal's state and the verified log.
 */
import type { FileState, StoreState } from './journal.js';

/** The rate an ETA is computed from: bytes verified over the last minute. */
const RATE_WINDOW_MS = 60_000;

export interface Backlog {
  files: number;
  bytes: number;
  /** Age of the oldest file not yet verified (s). */
  lagSeconds: number;
}

export interface OffloadStatus extends Backlog {
  /** Bytes per second verified over the last minute. */
  rateBps: number;
  /** Seconds until today's backlog is verified at that rate (null: nothing moving). */
  etaSeconds: number | null;
  stalled: boolean;
  /** Offload runs at storing's priority: the backlog threatens the local disk (else it yields, nice 19). */
  urgent: boolean;
  stores: {
    store: string;
    state: 'acquiring' | 'transferring' | 'complete';
    files: number;
    verifiedFiles: number;
    bytes: number;
    verifiedBytes: number;
    etaSeconds: number | null;
  }[];
}

/** Batches verified, oldest first (trimmed to the rate window by `offloadStatus`). */
export type VerifiedLog = { at: number; bytes: number }[];

export function backlogOf(pending: Iterable<FileState>, now = Date.now()): Backlog {
  let files = 0;
  let bytes = 0;
  let oldest = Infinity;
  for (const f of pending) {
    if (f.verified) continue;
    files++;
    bytes += f.bytes;
    oldest = Math.min(oldest, f.queuedAt);
  }
  return { files, bytes, lagSeconds: files > 0 ? (now - oldest) / 1000 : 0 };
}

/** The backlog, the last minute's rate, the ETA, and the last `n` stores' state (newest first). */
export function offloadStatus(
  pending: Iterable<FileState>,
  stores: Iterable<StoreState>,
  log: VerifiedLog,
  stalled: boolean,
  urgent: boolean,
  n: number,
  now = Date.now(),
): OffloadStatus {
  const b = backlogOf(pending, now);
  while (log.length > 0 && log[0].at < now - RATE_WINDOW_MS) log.shift();
  const span = Math.max(1, Math.min(RATE_WINDOW_MS, now - (log[0]?.at ?? now) + 1000)) / 1000;
  const rateBps = log.reduce((s, v) => s + v.bytes, 0) / span;
  const eta = (bytes: number) => (bytes === 0 ? 0 : rateBps > 0 ? bytes / rateBps : null);
  // Oldest first is the offload's order: a store's ETA counts the backlog ahead of it.
  let ahead = 0;
  const all = [...stores].map((st) => {
    const left = st.bytes - st.verifiedBytes;
    ahead += left;
    return {
      store: st.store,
      state: st.complete ? ('complete' as const) : st.finished ? ('transferring' as const) : ('acquiring' as const),
      files: st.files,
      verifiedFiles: st.verifiedFiles,
      bytes: st.bytes,
      verifiedBytes: st.verifiedBytes,
      etaSeconds: left === 0 ? 0 : eta(ahead),
    };
  });
  return { ...b, rateBps, etaSeconds: eta(b.bytes), stalled, urgent, stores: all.slice(-n).reverse() };
}

/**
 * The priority rule, a pure function of the local disk and the backlog: offload runs at storing's
 * priority once the free space above the disk guard's margin is less than the backlog (a full disk
 * would stop storing altogether, the nearer danger than a CPU shortage), and yields again only once
 * free space is twice the backlog (hysteresis: no flapping at the boundary).
 */
export function offloadUrgent(freeAboveMargin: number, backlogBytes: number, wasUrgent: boolean): boolean {
  if (backlogBytes <= 0) return false;
  return wasUrgent ? freeAboveMargin < 2 * backlogBytes : freeAboveMargin < backlogBytes;
}
