/**
 * Alerts computed once from the configured thresholds and published on the event bus, so the page
 * and the log show what Grafana/Alertmanager would (grafana/ rules are generated from the same
 * thresholds by `spimstream rules`, and a test checks they agree).
 */
import { DiskForecast } from './disk-forecast.js';
import type { EventBus, StreamKey } from '../pipeline/events.js';
import type { Config } from '../config/config.js';
import { streamId } from '../pipeline/events.js';

export interface AlertState {
  name: string;
  stream: StreamKey | null;
  active: boolean;
  message: string;
  value: number;
  since: number;
}

export const DROP_WINDOW_SECONDS = 60;
/** focus_lost clears only after this many stacks in a row at or above the clear level (hysteresis). */
/** 1 h 05 min, 12 min, 40 s. */
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return 'never';
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  return s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`;
}

export const FOCUS_CLEAR_STACKS = 2;
/** A firing alert's current value reaches the page and the metrics at most this often. */
const UPDATE_MS = 1000;

/** The alert catalogue: every alert exists, 0 or 1, from the start (per stream where it has one). */
export const STREAM_ALERTS = ['saturation', 'drift', 'focus_lost'] as const;
export const GLOBAL_ALERTS = ['frames_dropped', 'frames_unstored', 'storage', 'ring_filling', 'disk_low', 'local_disk_full_soon'] as const;

/** focus_lost fires below 1 - drop and clears at or above 1 - drop/2 (the band keeps it from flapping). */
export function focusLevels(dropRatio: number): { low: number; clear: number } {
  return { low: 1 - dropRatio, clear: 1 - dropRatio / 2 };
}

const UNSTORED_HINT: Record<string, string> = {
  'block-pool-full': 'encoding cannot keep up',
  'frame-pool-full': 'spimstream cannot keep up (CPU): frames skipped in the ring before it overflowed',
  'write-backlog': 'the disk cannot keep up',
  index: 'frames outside the declared geometry',
  late: 'the producer revisited planes whose chunks were already sealed',
};

/**
 * focus_lost's hysteresis for one stream: fires below `low`, clears after FOCUS_CLEAR_STACKS judged
 * stacks in a row at or above `clear`. The alert engine runs one per stream; tests replay real
 * stacks through the same object.
 */
export class FocusHysteresis {
  firing = false;
  private ok = 0;

  constructor(private readonly dropRatio: () => number) {}

  /** Takes a judged stack's relative focus; returns whether focus_lost is on after it. */
  step(relative: number): boolean {
    const { low, clear } = focusLevels(this.dropRatio());
    this.ok = relative >= clear ? this.ok + 1 : 0;
    this.firing = this.firing ? this.ok < FOCUS_CLEAR_STACKS : relative < low;
    return this.firing;
  }
}

export class AlertEngine {
  readonly active = new Map<string, AlertState>();
  private readonly focus = new Map<string, FocusHysteresis>();
  private readonly lastUpdate = new Map<string, number>();
  private readonly drops: { at: number; n: number }[] = [];
  private readonly unstored: { at: number; n: number; reason: string }[] = [];
  private timer: NodeJS.Timeout;
  /** Seconds until the output disk reaches storage.min_free_bytes at the last minute's net inflow. */
  readonly disk = new DiskForecast();

  constructor(
    private readonly bus: EventBus,
    private cfg: Config,
    private readonly probes: { ringFill(): number; diskFree(): number | null },
  ) {
    const th = () => this.cfg.qc.thresholds;
    bus.on('frame-qc', (e) => {
      const s = e.stream;
      this.set(
        'saturation',
        s,
        e.qc.saturatedRatio > th().saturated_ratio,
        e.qc.saturatedRatio,
        `${(e.qc.saturatedRatio * 100).toFixed(3)}% of pixels saturated (threshold ${(th().saturated_ratio * 100).toFixed(3)}%)`,
      );
      if (e.qc.drift?.valid) {
        const um = Math.hypot(e.qc.drift.dx, e.qc.drift.dy) * this.cfg.pixel_size_um.x;
        this.set('drift', s, um > th().drift_um, um, `lateral drift ${um.toFixed(2)} µm (threshold ${th().drift_um} µm)`);
      }
    });
    bus.on('stack-qc', (e) => {
      // Like with like (see focus-baseline.ts): null while the planes have no baseline yet.
      const r = e.qc.focusRelative;
      if (r === null) return;
      const { low, clear } = focusLevels(th().focus_drop_ratio);
      const k = streamId(e.stream);
      let h = this.focus.get(k);
      if (!h) this.focus.set(k, (h = new FocusHysteresis(() => th().focus_drop_ratio)));
      const on = h.step(r);
      this.set(
        'focus_lost',
        e.stream,
        on,
        r,
        `best-plane focus at ${(r * 100).toFixed(0)}% of its baseline (fires below ${(low * 100).toFixed(0)}%, clears at ${(clear * 100).toFixed(0)}% for ${FOCUS_CLEAR_STACKS} stacks)`,
      );
    });
    bus.on('frames-lost', (e) => this.drops.push({ at: Date.now(), n: e.count }));
    bus.on('frames-unstored', (e) => this.unstored.push({ at: Date.now(), n: e.count, reason: e.reason }));
    bus.on('storage-error', (e) => this.set('storage', null, true, 1, e.message));
    bus.on('storage-resumed', (e) => this.set('storage', null, false, 0, e.message));
    bus.on('acquisition-started', (e) => {
      if (e.storePath) this.set('storage', null, false, 0, 'storing');
      this.focus.clear();
    });
    this.timer = setInterval(() => this.periodic(), 1000);
    this.timer.unref();
  }

  reload(cfg: Config): void {
    this.cfg = cfg;
  }

  private periodic(): void {
    const now = Date.now();
    while (this.drops.length > 0 && this.drops[0].at < now - DROP_WINDOW_SECONDS * 1000) this.drops.shift();
    const dropped = this.drops.reduce((s, d) => s + d.n, 0);
    this.set(
      'frames_dropped',
      null,
      dropped > 0,
      dropped,
      `${dropped} ${dropped === 1 ? 'frame' : 'frames'} lost in the last ${DROP_WINDOW_SECONDS} s`,
    );
    while (this.unstored.length > 0 && this.unstored[0].at < now - DROP_WINDOW_SECONDS * 1000) this.unstored.shift();
    const why = new Map<string, number>();
    for (const u of this.unstored) why.set(u.reason, (why.get(u.reason) ?? 0) + u.n);
    const notStored = [...why.values()].reduce((a, b) => a + b, 0);
    this.set(
      'frames_unstored',
      null,
      notStored > 0,
      notStored,
      `${notStored} ${notStored === 1 ? 'frame' : 'frames'} not stored in the last ${DROP_WINDOW_SECONDS} s (${[...why].map(([r, n]) => `${r}: ${n}${UNSTORED_HINT[r] ? `, ${UNSTORED_HINT[r]}` : ''}`).join('; ')}); QC and preview continue`,
    );
    const fill = this.probes.ringFill();
    this.set(
      'ring_filling',
      null,
      fill > this.cfg.qc.thresholds.ring_fill_ratio,
      fill,
      `ring ${(fill * 100).toFixed(0)}% full (threshold ${(this.cfg.qc.thresholds.ring_fill_ratio * 100).toFixed(0)}%)`,
    );
    const free = this.probes.diskFree();
    if (free !== null) {
      this.set(
        'disk_low',
        null,
        free < this.cfg.qc.thresholds.disk_free_bytes,
        free,
        `${(free / 1e9).toFixed(1)} GB free on the output disk (threshold ${(this.cfg.qc.thresholds.disk_free_bytes / 1e9).toFixed(1)} GB)`,
      );
      this.disk.sample(now, free);
      const fullIn = this.disk.fullInSeconds(this.cfg.storage.min_free_bytes);
      const warn = this.cfg.qc.thresholds.disk_full_in_s;
      this.set(
        'local_disk_full_soon',
        null,
        fullIn < warn,
        fullIn,
        `the output disk reaches storage.min_free_bytes (storing stops) in ${fmtDuration(fullIn)} at the last minute's net inflow of ${((this.disk.inflow() ?? 0) / 1e6).toFixed(0)} MB/s (threshold ${fmtDuration(warn)})`,
      );
    }
  }

  private set(name: string, stream: StreamKey | null, on: boolean, value: number, message: string): void {
    const key = `${name}/${stream ? streamId(stream) : ''}`;
    const cur = this.active.get(key);
    if (on && !cur) {
      const a = { name, stream, active: true, message, value, since: Date.now() };
      this.active.set(key, a);
      this.bus.emit('alert', { name, stream, active: true, message, value });
    } else if (on && cur) {
      const changed = cur.message !== message;
      cur.message = message;
      cur.value = value;
      // A firing alert shows its current value (throttled: saturation can change 100 times a second).
      const now = Date.now();
      if (changed && now - (this.lastUpdate.get(key) ?? 0) >= UPDATE_MS) {
        this.lastUpdate.set(key, now);
        this.bus.emit('alert', { name, stream, active: true, message, value, update: true });
      }
    } else if (!on && cur) {
      this.active.delete(key);
      this.bus.emit('alert', { name, stream, active: false, message, value });
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
