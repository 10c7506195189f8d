/**
 * `spimstream calibrate --store DIR`: replays a recorded OME-Zarr acquisition (one known to be good:
 * in focus, not drifting) through the same QC the sidecar runs, and prints what it saw and the
 * thresholds that would not have fired on it. Read-only: the store is never written.
 */
import * as zarr from 'zarrita';
import { FileSystemStore } from '@zarrita/storage';
import { measureFrame } from '../../workers/frame-task.js';
import type { QcParams } from '../../workers/tasks.js';
import type { Config } from '../config/config.js';
import { FocusBaseline } from './focus-baseline.js';
import { focusLevels } from './alerts.js';

export interface CalibrationStream {
  channel: number;
  /** Stacks judged (written, not saturated). */
  stacks: number;
  /** Stacks never written (fill value only: the last timepoint of a run stopped mid-stack). */
  empty: number;
  /** Stacks above qc.thresholds.saturated_ratio: left out of focus and drift, as the sidecar does. */
  saturated: number;
  focusRelativeMin: number | null;
  driftConfidenceP5: number | null;
  driftPxP99: number | null;
  stackSaturationP99: number;
}

export interface Calibration {
  shape: number[];
  streams: CalibrationStream[];
  suggested: Record<string, number>;
  notes: string[];
}

function quantile(v: number[], q: number): number | null {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function calibrate(storeDir: string, cfg: Config, qc: QcParams): Promise<Calibration> {
  const arr = await zarr.open.v3(zarr.root(new FileSystemStore(storeDir)).resolve('0'), { kind: 'array' });
  if (arr.shape.length !== 5) throw new Error(`${storeDir}: expected a t, c, z, y, x array at "0", found ${arr.shape.length} dimensions`);
  const [T, C, Z, H, W] = arr.shape;
  const bpp = arr.dtype === 'uint16' ? 2 : arr.dtype === 'uint8' ? 1 : 0;
  if (bpp === 0) throw new Error(`${storeDir}: dtype ${arr.dtype} is not uint8 or uint16`);
  const streams: CalibrationStream[] = [];
  const notes: string[] = [];
  const centre = Z >> 1;
  for (let c = 0; c < C; c++) {
    const base = new FocusBaseline(() => 0); // every stack enters: we want the spread of a good run
    const rel: number[] = [];
    const conf: number[] = [];
    const shift: number[] = [];
    const sat: number[] = [];
    let ref: SharedArrayBuffer | null = null;
    let empty = 0;
    let saturated = 0;
    let judged = 0;
    for (let t = 0; t < T; t++) {
      const stack = await zarr.get(arr, [t, c, null, null, null]);
      const data = stack.data as Uint16Array | Uint8Array;
      if (data.every((v) => v === 0)) {
        empty++;
        continue;
      }
      const planes = new Map<number, number>();
      let maxSat = 0;
      const drifts: { confidence: number; shift: number | null; reference: SharedArrayBuffer | null }[] = [];
      for (let z = 0; z < Z; z++) {
        const plane = data.subarray(z * W * H, (z + 1) * W * H);
        const drift = z === centre;
        const r = measureFrame(plane, W, H, {
          qc,
          saturationLevel: Math.min(cfg.camera.saturation_level, bpp === 1 ? 255 : 65535),
          offset: cfg.camera.offset,
          drift,
          driftReference: drift ? ref : null,
        });
        if (drift)
          drifts.push({
            confidence: r.qc.drift?.confidence ?? NaN,
            shift: r.qc.drift?.valid ? Math.hypot(r.qc.drift.dx, r.qc.drift.dy) : null,
            reference: r.newReference,
          });
        const f = r.qc.focus[cfg.qc.focus[0]];
        if (f !== undefined) planes.set(z, f);
        maxSat = Math.max(maxSat, r.qc.saturatedRatio);
      }
      sat.push(maxSat);
      // Like the sidecar (qc-gate.ts): a saturated stack neither enters the baselines nor is judged.
      if (maxSat > cfg.qc.thresholds.saturated_ratio) {
        saturated++;
        continue;
      }
      judged++;
      for (const d of drifts) {
        if (!ref) ref = d.reference;
        if (Number.isFinite(d.confidence)) conf.push(d.confidence);
        if (d.shift !== null) shift.push(d.shift);
      }
      const fr = base.closeStack(planes);
      if (fr !== null) rel.push(fr);
    }
    if (saturated > 0)
      notes.push(`channel ${c}: ${saturated} saturated stack(s) left out of focus and drift (as the sidecar leaves them out)`);
    streams.push({
      channel: c,
      stacks: judged,
      empty,
      saturated,
      focusRelativeMin: rel.length ? Math.min(...rel) : null,
      driftConfidenceP5: quantile(conf, 0.05),
      driftPxP99: quantile(shift, 0.99),
      stackSaturationP99: quantile(sat, 0.99) ?? 0,
    });
  }
  const th = cfg.qc.thresholds;
  const suggested: Record<string, number> = {};
  const minRel = Math.min(...streams.map((s) => s.focusRelativeMin ?? Infinity));
  if (Number.isFinite(minRel)) {
    // The alert level should sit 0.1 below the lowest relative focus of a good run.
    const drop = Math.min(0.6, Math.max(th.focus_drop_ratio, Number((1 - (minRel - 0.1)).toFixed(2))));
    suggested['qc.thresholds.focus_drop_ratio'] = drop;
    if (drop > th.focus_drop_ratio)
      notes.push(
        `relative focus went down to ${minRel.toFixed(2)} on this run: focus_lost at ${focusLevels(th.focus_drop_ratio).low.toFixed(2)} would have fired`,
      );
  } else notes.push('fewer than 4 timepoints: no focus baseline (record a longer run)');
  const p5 = Math.min(...streams.map((s) => s.driftConfidenceP5 ?? Infinity));
  if (Number.isFinite(p5) && p5 < cfg.qc.drift_min_confidence) {
    notes.push(
      `drift confidence on this specimen is as low as ${p5.toFixed(1)} (5th percentile): below qc.drift_min_confidence = ${cfg.qc.drift_min_confidence} shifts are not reported; a larger qc.drift_window helps; do not go below ~8, the noise floor of empty frames`,
    );
  }
  suggested['qc.drift_min_confidence'] = cfg.qc.drift_min_confidence;
  const px = Math.max(...streams.map((s) => s.driftPxP99 ?? 0));
  suggested['qc.thresholds.drift_um'] = Math.max(th.drift_um, Number((2 * px * cfg.pixel_size_um.x).toFixed(2)));
  const satP99 = Math.max(...streams.map((s) => s.stackSaturationP99));
  suggested['qc.thresholds.saturated_ratio'] = Math.max(th.saturated_ratio, Number((2 * satP99).toPrecision(2)));
  if (satP99 > th.saturated_ratio)
    notes.push(
      `up to ${(satP99 * 100).toFixed(3)} % of pixels were saturated on this run: reduce laser power or exposure, or raise the threshold knowingly`,
    );
  return { shape: [T, C, Z, H, W], streams, suggested, notes };
}
