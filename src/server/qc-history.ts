/**
 * The last minutes of each stream's QC series, kept by the server so that a page opened (or
 * reloaded) mid-acquisition shows its plots at once. Bounded: at most 2 points a second per series
 * over HISTORY_SECONDS, cleared when an acquisition starts.
 */
import type { EventBus, StreamKey } from '../pipeline/events.js';
import { streamId } from '../pipeline/events.js';
import { focusPlottable } from '../qc/qc-types.js';

export const HISTORY_SECONDS = 300;
const MIN_INTERVAL_MS = 500;
export const SERIES = ['focus', 'sat', 'dx', 'dy', 'int'] as const;
export type SeriesName = (typeof SERIES)[number];
/** [time ms, value] */
export type Point = [number, number];

export class QcHistory {
  private readonly series = new Map<string, Record<SeriesName, Point[]>>();

  /** `intensity(stream)`: the stream's relative intensity, sampled once a second. */
  constructor(
    bus: EventBus,
    private readonly pixelSizeUm: () => number,
    streams: () => { stream: StreamKey; intensityRelative: number }[],
  ) {
    bus.on('acquisition-started', () => this.series.clear());
    bus.on('frame-qc', (e) => {
      const id = streamId(e.stream);
      this.add(id, 'sat', e.qc.saturatedRatio * 100);
      if (e.qc.drift?.valid) {
        this.add(id, 'dx', e.qc.drift.dx * this.pixelSizeUm());
        this.add(id, 'dy', e.qc.drift.dy * this.pixelSizeUm());
      }
    });
    bus.on('stack-qc', (e) => {
      if (focusPlottable(e.qc)) this.add(streamId(e.stream), 'focus', e.qc.meanFocus);
    });
    const timer = setInterval(() => {
      for (const s of streams()) this.add(streamId(s.stream), 'int', s.intensityRelative);
    }, 1000);
    timer.unref();
  }

  private add(id: string, name: SeriesName, v: number): void {
    if (!Number.isFinite(v)) return;
    let s = this.series.get(id);
    if (!s) this.series.set(id, (s = { focus: [], sat: [], dx: [], dy: [], int: [] }));
    const pts = s[name];
    const now = Date.now();
    const last = pts[pts.length - 1];
    if (last && now - last[0] < MIN_INTERVAL_MS)
      last[1] = name === 'sat' ? Math.max(last[1], v) : v; // keep a saturation peak
    else pts.push([now, v]);
    while (pts.length > 0 && pts[0][0] < now - HISTORY_SECONDS * 1000) pts.shift();
  }

  /** Every stream's series (for a new client). */
  snapshot(): Record<string, Record<SeriesName, Point[]>> {
    return Object.fromEntries(this.series);
  }
}
