/** The log: a subscriber of the event bus that writes human lines or JSON lines to stderr. */
import type { EventBus } from './pipeline/events.js';
import { streamId } from './pipeline/events.js';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
/** While frames stay unstored for the same reasons, the log repeats it this often. */
const UNSTORED_REPEAT_MS = 60_000;

export function attachLogger(
  bus: EventBus,
  json: boolean,
  level: keyof typeof LEVELS,
  out: NodeJS.WritableStream = process.stderr,
  redact: (line: string) => string = (l) => l,
): void {
  const min = LEVELS[level];
  const write = (lvl: keyof typeof LEVELS, msg: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[lvl] < min) return;
    const time = new Date().toISOString();
    // One line per record: a newline inside a message or field (a note from the form) stays escaped.
    if (json) out.write(`${redact(JSON.stringify({ time, level: lvl, msg, ...fields }))}\n`);
    else {
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'object' || /[\r\n]/.test(String(v)) ? JSON.stringify(v) : String(v)}`)
        .join(' ');
      out.write(`${redact(`${time} ${lvl.toUpperCase().padEnd(5)} ${msg.replace(/\r?\n/g, '\\n')}${extra ? ` ${extra}` : ''}`)}\n`);
    }
  };
  bus.on('log', (e) => write(e.level, e.msg, e.fields));
  // Losses are aggregated per second so a storm of overruns is one line, not thousands.
  const pending = { late: 0, overrun: 0, gap: 0, torn: 0, unstored: 0 };
  const unstoredWhy = new Map<string, number>();
  bus.on('frames-lost', (e) => {
    pending[e.late ? 'late' : e.reason] += e.count;
  });
  bus.on('frames-unstored', (e) => {
    pending.unstored += e.count;
    unstoredWhy.set(e.reason, (unstoredWhy.get(e.reason) ?? 0) + e.count);
  });
  let unstoredKey = '';
  let unstoredAt = 0;
  const flushLosses = (force = false) => {
    if (pending.late > 0)
      write(
        'warn',
        'frames lost: ring overrun (published before spimstream attached, and overwritten since: start spimstream before the producer)',
        { frames: pending.late },
      );
    if (pending.overrun > 0) write('warn', 'frames lost: ring overrun (spimstream fell behind the producer)', { frames: pending.overrun });
    if (pending.torn > 0)
      write('warn', 'frames lost: torn (the slot was overwritten or the ring file truncated during the copy; discarded)', {
        frames: pending.torn,
      });
    if (pending.gap > 0) write('warn', 'frames lost: camera frame counter gap (lost before the ring)', { frames: pending.gap });
    if (pending.unstored > 0) {
      // A storage error stops storing for the rest of the run: say it at once, then once a minute
      // while the reasons stay the same (not every second). The sum still matches the summary.
      const key = [...unstoredWhy.keys()].sort().join();
      const now = Date.now();
      if (force || key !== unstoredKey || now - unstoredAt >= UNSTORED_REPEAT_MS) {
        write(
          'warn',
          key === unstoredKey ? 'frames still not stored (QC and preview continue)' : 'frames not stored (QC and preview continue)',
          { frames: pending.unstored, reasons: Object.fromEntries(unstoredWhy) },
        );
        unstoredKey = key;
        unstoredAt = now;
        pending.unstored = 0;
        unstoredWhy.clear();
      }
    }
    pending.late = pending.overrun = pending.gap = pending.torn = 0;
  };
  const timer = setInterval(() => flushLosses(), 1000);
  timer.unref();
  bus.on('acquisition-started', (e) => write('info', 'acquisition started', { id: e.id, name: e.name, store: e.storePath, ...e.geometry }));
  // The last second's losses are logged before the summary, so the loss lines add up to it.
  bus.on('acquisition-finished', () => flushLosses(true));
  bus.on('acquisition-finished', (e) =>
    write('info', 'acquisition finished', {
      id: e.id,
      name: e.name,
      store: e.storePath,
      frames_received: e.summary.framesReceived,
      frames_overrun: e.summary.framesOverrun,
      frames_gap: e.summary.framesGap,
      frames_torn: e.summary.framesTorn,
      qc_sampled: e.summary.qcSampled,
      qc_sampled_reasons: e.summary.qcSampledReasons,
      frames_unstored: e.summary.framesUnstored,
      bytes_received: e.summary.bytesReceived,
      bytes_written: e.summary.bytesWritten,
      compression_ratio: Number(e.summary.compressionRatio.toFixed(3)),
      seconds: Number(e.summary.durationSeconds.toFixed(1)),
    }),
  );
  bus.on('storage-error', (e) => write('error', `storage: ${e.message}`, { code: e.code }));
  // One readable form for a stream (GFP/0); global alerts have none.
  bus.on(
    'alert',
    (e) =>
      e.update ||
      write(
        e.active ? 'warn' : 'info',
        `alert ${e.name} ${e.active ? 'FIRING' : 'resolved'}: ${e.message}`,
        e.stream ? { stream: streamId(e.stream) } : {},
      ),
  );
}
