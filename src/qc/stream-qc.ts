/**
 * Per-stream QC that needs history, kept on the main thread (a few numbers per frame): frame timing
 * from the ring timestamps (fps, interval jitter), intensity relative to the first timepoint,
 * stack summaries (best-focus z, mean focus, max saturation) and the best-focus z over time as a
 * cheap axial-drift proxy. Consumes `frame-qc`, emits `stack-qc`.
 */
import type { EventBus, PipelineEvents, StreamKey } from '../pipeline/events.js';
import type { StackQc } from './qc-types.js';
import { FocusBaseline } from './focus-baseline.js';
import { excluded, SignalBaseline, type GateLimits } from './qc-gate.js';
import { streamId } from '../pipeline/events.js';

export interface StreamTiming {
  fps: number;
  jitterSeconds: number;
  meanIntervalSeconds: number;
}

/** Timing over a sliding window of the last `window` frame timestamps (ns) of one stream. */
export class TimingWindow {
  private readonly ts: number[] = [];
  constructor(private readonly window = 100) {}

  add(tsNs: number): void {
    this.ts.push(tsNs);
    if (this.ts.length > this.window) this.ts.shift();
  }

  get(): StreamTiming {
    const n = this.ts.length;
    if (n < 2) return { fps: 0, jitterSeconds: 0, meanIntervalSeconds: 0 };
    const iv: number[] = [];
    for (let i = 1; i < n; i++) iv.push((this.ts[i] - this.ts[i - 1]) / 1e9);
    const mean = iv.reduce((s, v) => s + v, 0) / iv.length;
    const sd = Math.sqrt(iv.reduce((s, v) => s + (v - mean) * (v - mean), 0) / iv.length);
    return { fps: mean > 0 ? 1 / mean : 0, jitterSeconds: sd, meanIntervalSeconds: mean };
  }
}

interface StackAcc {
  t: number;
  planes: number;
  focusSum: number;
  focusPlanes: number;
  bestZ: number;
  bestFocus: number;
  maxSat: number;
  signalSum: number;
  focusByZ: Map<number, number>;
  /** Frames of this stack read from the ring (frame-received, in ring order): its QC results to wait for. */
  expected: number;
}

export interface StreamState {
  stream: StreamKey;
  timing: TimingWindow;
  firstSignal: Map<number, number>;
  intensityRelative: number;
  /** Open stacks by t: QC results complete out of order across workers, so several can be open. */
  stacks: Map<number, StackAcc>;
  /** Highest t closed: a straggler of a closed stack is not a new stack. */
  closedT: number;
  /** Highest t read from the ring: once a newer t is read, an older stack gets no more frames. */
  receivedT: number;
  lastStack: StackQc | null;
  bestFocusZHistory: { t: number; z: number }[];
  focusBaseline: FocusBaseline;
  signalBaseline: SignalBaseline;
  /** Why the last stacks were kept out of the baselines (null: judged normally). */
  excludedSince: { t: number; reason: string } | null;
}

/** Open stacks per stream before the oldest is closed without its missing results. */
const MAX_OPEN = 16;

export class StreamQc {
  readonly streams = new Map<string, StreamState>();

  /** `focusLowRatio`: relative focus below which a stack stays out of the focus baseline (the alert level). */
  constructor(
    private readonly bus: EventBus,
    private readonly zPlanes: () => number,
    private readonly focusMeasure: () => string,
    private readonly focusLowRatio: () => number = () => 0.7,
    private readonly gate: () => GateLimits = () => ({ saturatedRatio: 1, intensityStep: Infinity }),
  ) {
    bus.on('frame-qc', (e) => this.onFrame(e));
    // Timing in ring order (QC results may complete out of order across workers).
    bus.on('frame-received', (e) => {
      const s = this.state(e.stream);
      s.timing.add(e.meta.timestampNs);
      if (e.meta.t <= s.closedT) return;
      this.acc(s, e.meta.t).expected++;
      s.receivedT = Math.max(s.receivedT, e.meta.t);
      this.closeReady(s);
    });
    bus.on('acquisition-started', () => this.streams.clear());
    // A deliberate change accepted: every baseline starts again from the next stacks.
    bus.on('qc-rebaseline', () => {
      for (const s of this.streams.values()) {
        s.focusBaseline.clear();
        s.signalBaseline.clear();
        s.firstSignal.clear();
        s.excludedSince = null;
      }
    });
  }

  /** The acquisition ended: judges every stream's open stacks (stack-qc), before its manifest is written. */
  finishAcquisition(): void {
    for (const s of this.streams.values()) this.closeAll(s);
  }

  private state(stream: StreamKey): StreamState {
    const k = `${stream.camera}/${stream.channel}/${stream.view}`;
    let s = this.streams.get(k);
    if (!s) {
      s = {
        stream,
        timing: new TimingWindow(),
        firstSignal: new Map(),
        intensityRelative: 1,
        stacks: new Map(),
        closedT: -1,
        receivedT: -1,
        lastStack: null,
        bestFocusZHistory: [],
        focusBaseline: new FocusBaseline(this.focusLowRatio),
        signalBaseline: new SignalBaseline(),
        excludedSince: null,
      };
      this.streams.set(k, s);
    }
    return s;
  }

  private onFrame(e: PipelineEvents['frame-qc']): void {
    const s = this.state(e.stream);
    const z = e.meta.z;
    if (!s.firstSignal.has(z) && e.qc.signal > 0) s.firstSignal.set(z, e.qc.signal);
    const f0 = s.firstSignal.get(z);
    if (f0) s.intensityRelative = e.qc.signal / f0;
    const t = e.meta.t;
    if (t <= s.closedT) return; // a straggler of a stack already summarized (forced closed)
    const st = this.acc(s, t);
    const f = e.qc.focus[this.focusMeasure()];
    st.planes++;
    st.signalSum += e.qc.signal;
    st.maxSat = Math.max(st.maxSat, e.qc.saturatedRatio);
    // A sampled frame (no focus computed) says nothing about focus: it neither lowers the mean nor wins best z.
    if (f !== undefined) {
      st.focusPlanes++;
      st.focusSum += f;
      st.focusByZ.set(z, f);
    }
    if (f !== undefined && f > st.bestFocus) {
      st.bestFocus = f;
      st.bestZ = z;
    }
    this.closeReady(s);
  }

  private acc(s: StreamState, t: number): StackAcc {
    let st = s.stacks.get(t);
    if (!st)
      s.stacks.set(
        t,
        (st = {
          t,
          planes: 0,
          focusPlanes: 0,
          focusSum: 0,
          bestZ: -1,
          bestFocus: -Infinity,
          maxSat: 0,
          signalSum: 0,
          focusByZ: new Map(),
          expected: 0,
        }),
      );
    return st;
  }

  /**
   * Closes stacks in t order while the oldest open one is complete: every frame read for it has its
   * QC result, and no more can come (all planes read, or a newer timepoint read: the rest was lost).
   * QC results complete far out of order across workers, so "t changed" says nothing. More than
   * MAX_OPEN stacks open (a result that never came): the oldest is closed anyway (bounded memory).
   */
  private closeReady(s: StreamState): void {
    const ts = [...s.stacks.keys()].sort((a, b) => a - b);
    for (const t of ts) {
      const st = s.stacks.get(t)!;
      const allRead = st.expected >= this.zPlanes() || s.receivedT > t;
      const done = st.planes >= st.expected && st.expected > 0 && allRead;
      if (!done && s.stacks.size <= MAX_OPEN) break;
      this.closeStack(s, st);
      s.stacks.delete(t);
      s.closedT = Math.max(s.closedT, t);
    }
  }

  private closeAll(s: StreamState): void {
    for (const t of [...s.stacks.keys()].sort((a, b) => a - b)) {
      this.closeStack(s, s.stacks.get(t)!);
      s.stacks.delete(t);
      s.closedT = Math.max(s.closedT, t);
    }
  }

  private closeStack(s: StreamState, st: StackAcc): void {
    if (st.planes === 0) return;
    const meanSignal = st.signalSum / st.planes;
    const why = excluded(st.maxSat, meanSignal, s.signalBaseline.get(), this.gate());
    this.noteExcluded(s, st.t, why, meanSignal);
    if (!why) s.signalBaseline.add(meanSignal);
    const qc: StackQc = {
      planes: st.planes,
      focusPlanes: st.focusPlanes,
      bestFocusZ: st.bestZ,
      meanFocus: st.focusPlanes > 0 ? st.focusSum / st.focusPlanes : 0,
      maxSaturatedRatio: st.maxSat,
      meanSignal,
      focusRelative: why ? null : s.focusBaseline.closeStack(st.focusByZ),
      excluded: why,
    };
    s.lastStack = qc;
    s.bestFocusZHistory.push({ t: st.t, z: st.bestZ });
    if (s.bestFocusZHistory.length > 1000) s.bestFocusZHistory.shift();
    this.bus.emit('stack-qc', { stream: s.stream, t: st.t, qc });
  }

  /** One log line when a stream's stacks start or stop being kept out of the baselines. */
  private noteExcluded(s: StreamState, t: number, why: string | null, signal: number): void {
    const id = streamId(s.stream);
    if (why && !s.excludedSince) {
      s.excludedSince = { t, reason: why };
      const base = s.signalBaseline.get();
      const detail =
        why === 'saturated'
          ? 'saturated above qc.thresholds.saturated_ratio'
          : `mean signal ×${base ? (signal / base).toFixed(2) : '?'} of its baseline`;
      this.bus.emit('log', {
        level: 'warn',
        msg: `${id}: stacks from t=${t} are not judged for focus and drift (${detail}); if the change is deliberate, accept it as the new baseline on the page or with POST /api/rebaseline`,
      });
    } else if (!why && s.excludedSince) {
      this.bus.emit('log', {
        level: 'info',
        msg: `${id}: stacks judged again from t=${t} (kept out since t=${s.excludedSince.t}: ${s.excludedSince.reason})`,
      });
      s.excludedSince = null;
    }
  }
}
