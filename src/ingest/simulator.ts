/**
 * The built-in simulated camera: a producer process that writes realistic SPIM frames into a ring
 * at a set rate, t -> channel -> z order, with faults injectable from the start (config) or live
 * (one JSON object per line on stdin, e.g. {"saturate": 1} or {"defocus_px": 3}).
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { RingWriter } from './ring-writer.js';
import { FLAG_STACK_END, FLAG_STACK_START } from './ring-layout.js';
import { SimScene, simCamera, type PlaneState } from './sim-scene.js';
import { checksumPixels } from '../../workers/kernels/stats.js';
import type { SimConfig } from '../config/config.js';
import { removeStaleLock } from './ring-lock.js';

export interface SimRunOptions extends SimConfig {
  ring: string;
  offset: number;
  /** Stop after this many frames (0 = by timepoints / forever). */
  frames: number;
  /** Write one JSON line per published frame: {seq, counter, t, c, z, checksum} (tests). */
  logFrames?: string;
  /** Pre-render this many noisy variants per (c, z) and cycle them: for rates the renderer cannot reach. */
  precomputed: number;
  /** Remove the ring file at exit. */
  unlinkAtExit: boolean;
  /** Read live fault commands (JSON lines) from stdin. */
  commandsOnStdin: boolean;
}

/** Live-adjustable faults (all default to "healthy"). */
export interface Faults {
  drift_px_per_t: [number, number];
  /** A sudden lateral displacement in pixels (a bumped stage), on top of the drift. */
  shift_px: [number, number];
  defocus_px: number;
  defocus_from_t: number;
  defocus_px_per_t: number;
  saturate: number;
  saturate_from_t: number;
  bleach_per_t: number;
  gap_every: number;
  /** Illumination factor (a laser power or exposure change): 4 = four times the signal. */
  gain: number;
  /** The channel defocus, saturation and gain apply to (-1: every channel); drift moves them all. */
  fault_channel: number;
}

const HEALTHY: Faults = {
  drift_px_per_t: [0, 0],
  shift_px: [0, 0],
  defocus_px: 0,
  defocus_from_t: -1,
  defocus_px_per_t: 0,
  saturate: 0,
  saturate_from_t: -1,
  bleach_per_t: 0,
  gap_every: 0,
  gain: 1,
  fault_channel: -1,
};

/** Null for a valid fault object, else one line naming the fault that is wrong. */
export function faultProblem(f: unknown): string | null {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return 'sim faults must be a JSON object such as {"saturate": 1}';
  for (const [k, v] of Object.entries(f)) {
    if (!(k in HEALTHY)) return `unknown sim fault "${k}"; known: ${Object.keys(HEALTHY).join(', ')}`;
    if (k === 'drift_px_per_t' || k === 'shift_px') {
      if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
        return `sim fault "${k}" must be [dx, dy] numbers (got ${JSON.stringify(v)})`;
    } else if (typeof v !== 'number' || !Number.isFinite(v)) return `sim fault "${k}" must be a number (got ${JSON.stringify(v)})`;
  }
  return null;
}

export function faultsFrom(f: Record<string, number | number[]>): Faults {
  const bad = faultProblem(f);
  if (bad) throw new Error(bad);
  return { ...structuredClone(HEALTHY), ...f } as Faults;
}

export function planeState(f: Faults, t: number, c = -1): PlaneState {
  if (f.fault_channel >= 0 && c >= 0 && c !== f.fault_channel) {
    return {
      dx: f.drift_px_per_t[0] * t + f.shift_px[0],
      dy: f.drift_px_per_t[1] * t + f.shift_px[1],
      blur: 0,
      gainFactor: Math.exp(-f.bleach_per_t * t),
    };
  }
  let blur = f.defocus_px;
  if (f.defocus_from_t >= 0 && t >= f.defocus_from_t) blur += f.defocus_px_per_t * (t - f.defocus_from_t + 1);
  let gainFactor = Math.exp(-f.bleach_per_t * t) * f.gain;
  // x200: the brightest structures clip at the camera maximum, as with a too-long exposure.
  if (f.saturate > 0 || (f.saturate_from_t >= 0 && t >= f.saturate_from_t)) gainFactor *= 200;
  return { dx: f.drift_px_per_t[0] * t + f.shift_px[0], dy: f.drift_px_per_t[1] * t + f.shift_px[1], blur, gainFactor };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSimulator(o: SimRunOptions, signal?: AbortSignal): Promise<number> {
  const faults = faultsFrom(o.faults);
  const dtype = o.bit_depth > 8 ? 'uint16' : 'uint8';
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  // Handled from before the ring exists until it is removed: a signal in between (the sidecar's
  // SIGTERM right after start, or a group signal followed by the sidecar's own) otherwise ended the
  // simulator with its default action and left the ring in /dev/shm.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  let writer: RingWriter;
  try {
    writer = RingWriter.create(o.ring, {
      width: o.width,
      height: o.height,
      dtype,
      bitDepth: o.bit_depth,
      slotCount: o.slots,
      zPlanes: o.z_planes,
      channels: o.channels,
      views: 1,
    });
  } catch (e) {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    throw e;
  }
  const scene = new SimScene({
    width: o.width,
    height: o.height,
    zPlanes: o.z_planes,
    channels: o.channels,
    blobs: o.blobs,
    seed: o.seed,
    bitDepth: o.bit_depth,
    offset: o.offset,
    ...simCamera(o.bit_depth),
  });
  const n = o.width * o.height;
  const frame = dtype === 'uint16' ? new Uint16Array(n) : new Uint8Array(n);
  const bytes = new Uint8Array(frame.buffer);
  const log = o.logFrames ? fs.openSync(o.logFrames, 'w') : -1;
  let parentGone = false;
  const parent = process.ppid; // captured now: an orphan is re-parented, and ppid changes
  signal?.addEventListener('abort', stop);
  let rl: readline.Interface | null = null;
  if (o.commandsOnStdin) {
    rl = readline.createInterface({ input: process.stdin });
    // stdin is the parent's pipe: it closes when the parent exits, however it dies (kill -9 too),
    // so a child simulator never outlives its sidecar.
    // A close without a signal first means the parent died (its stop sends SIGTERM and keeps the pipe).
    rl.on('close', () => {
      if (!stopping) parentGone = true;
      stop();
    });
    rl.on('line', (line) => {
      try {
        Object.assign(faults, faultsFrom(JSON.parse(line) as Record<string, number | number[]>));
      } catch (e) {
        process.stderr.write(`sim: ignoring command ${JSON.stringify(line)}: ${(e as Error).message}\n`);
      }
    });
  }
  // Cache of pre-rendered frames (precomputed mode) keyed by (c, z, variant).
  const cache = new Map<string, Uint8Array>();
  const cleanCache = new Map<string, { sig: string; img: Float32Array }>();
  let counter = 0;
  let published = 0;
  if (o.precomputed > 0) {
    // Render every variant before the acquisition starts, so the rate holds from the first frame.
    for (let v = 0; v < o.precomputed; v++) {
      for (let c = 0; c < o.channels; c++) {
        const st = planeState(faults, v, c);
        for (let z = 0; z < o.z_planes; z++) {
          scene.expose(scene.renderClean(z, c, st), frame, 10);
          cache.set(`${c}/${z}/${v}`, bytes.slice());
        }
      }
    }
  }
  const start = performance.now();
  writer.startAcquisition();
  try {
    for (let t = 0; !stopping && (o.timepoints === 0 || t < o.timepoints); t++) {
      for (let c = 0; c < o.channels && !stopping; c++) {
        const st = planeState(faults, t, c);
        for (let z = 0; z < o.z_planes && !stopping; z++) {
          if (o.frames > 0 && published >= o.frames) {
            stopping = true;
            break;
          }
          let out: Uint8Array = bytes;
          if (o.precomputed > 0) {
            const key = `${c}/${z}/${t % o.precomputed}`;
            let px = cache.get(key);
            if (!px) {
              scene.expose(scene.renderClean(z, c, st), frame, 10);
              px = bytes.slice();
              cache.set(key, px);
            }
            out = px; // published straight from the cache: no copy per frame at high rates
          } else {
            // The clean plane only changes when a fault changes the scene: cache it per (c, z).
            const sig = `${st.dx},${st.dy},${st.blur},${st.gainFactor}`;
            const key = `${c}/${z}`;
            let clean = cleanCache.get(key);
            if (!clean || clean.sig !== sig) {
              clean = { sig, img: scene.renderClean(z, c, st).slice() };
              cleanCache.set(key, clean);
            }
            scene.expose(clean.img, frame, 10);
          }
          if (faults.gap_every > 0 && counter > 0 && counter % faults.gap_every === 0) counter++; // camera lost one
          const flags = (z === 0 ? FLAG_STACK_START : 0) | (z === o.z_planes - 1 ? FLAG_STACK_END : 0);
          const seq = writer.publish(out, {
            cameraCounter: counter,
            timestampNs: Math.round((performance.timeOrigin + performance.now()) * 1e6),
            t,
            c,
            z,
            view: 0,
            flags,
          });
          if (log >= 0)
            fs.writeSync(
              log,
              `${JSON.stringify({ seq, counter, t, c, z, checksum: checksumPixels(dtype === 'uint16' ? new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2) : out) })}\n`,
            );
          counter++;
          published++;
          const due = start + (published * 1000) / o.fps;
          const ahead = due - performance.now();
          if (ahead > 1) await sleep(ahead);
          else if (published % 64 === 0) await sleep(0); // let stdin/signals in when running flat out
        }
      }
    }
  } finally {
    // Ended here (timepoints done, a signal, an abort): the stdin close below is ours, not the parent's death.
    stopping = true;
    rl?.close();
    process.stdin.destroy();
    writer.finishAcquisition();
    writer.close();
    if (log >= 0) fs.closeSync(log);
    if (o.unlinkAtExit) {
      fs.rmSync(o.ring, { force: true });
      // The ring is gone, so a lock on it is meaningless; remove it unless its owner is alive
      // (a sidecar killed with -9 cannot remove its own).
      // When our stdin closed, the parent (the sidecar owning the lock) is dying: wait for it.
      await removeStaleLock(o.ring, parentGone ? parent : 0, 10_000);
    }
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
  return published;
}
