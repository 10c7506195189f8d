/**
 * QC accuracy on REAL camera frames (../shared/data/real/: a raw LLSM bead stack), against known
 * truth and an independent reference (test/fixtures/qc_reference.py: numpy, scipy, scikit-image).
 * The worker's own frame task runs at the default configuration, so this is what the page shows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureFrame } from '../workers/frame-task.js';
import { DEFAULT_CONFIG } from '../src/config/config.js';
import { qcParamsFromConfig } from '../src/pipeline/pipeline.js';
import { FocusBaseline } from '../src/qc/focus-baseline.js';
import { FOCUS_CLEAR_STACKS, FocusHysteresis, focusLevels } from '../src/qc/alerts.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import type { FrameQc } from '../src/qc/qc-types.js';
import { ROOT, exited, shmPath, startTestApp, tmpDir, waitFor } from './helpers.js';

interface DriftCase {
  name: string;
  z: number;
  extra: string;
  truth: 'exact' | 'neighbour';
  dx: number;
  dy: number;
  skimage_dx: number;
  skimage_dy: number;
}
interface Cases {
  width: number;
  height: number;
  planes: number;
  drift: DriftCase[];
  null: { name: string; z: number; kind: string; fraction: number }[];
  saturation: { name: string; level: number; saturated: number; min: number; max: number; mean: number }[];
  focus: { name: string; z: number; sigma: number; dcts: number; tenengrad: number }[];
}

let dir = '';
let cases: Cases;
const cfg = DEFAULT_CONFIG;
const qc = qcParamsFromConfig(cfg);

beforeAll(() => {
  dir = tmpDir('qc-real');
  const r = spawnSync('python3', [path.join(ROOT, 'test/fixtures/qc_reference.py'), dir], { encoding: 'utf8', timeout: 300000 });
  expect(r.status, `the reference script failed (numpy/scipy/scikit-image/tifffile: scripts/test-deps.sh installs them): ${r.stderr}`).toBe(
    0,
  );
  cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8')) as Cases;
  // The generator says how many cases of each kind it wrote: a loop over fewer (an empty list) cannot pass.
  const m = /(\d+) drift, (\d+) null, (\d+) saturation, (\d+) focus cases/.exec(r.stdout);
  expect(m, r.stdout).not.toBe(null);
  printed = { drift: Number(m![1]), null: Number(m![2]), saturation: Number(m![3]), focus: Number(m![4]) };
  for (const [k, n] of Object.entries(printed)) {
    expect(n, k).toBeGreaterThan(0);
    expect(cases[k as keyof typeof printed].length, k).toBe(n);
  }
  expect(printed.focus).toBe(cases.planes * 3); // every plane in focus and at two defocus sigmas
}, 300000);
let printed: { drift: number; null: number; saturation: number; focus: number };
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function frame(name: string): Uint16Array {
  const b = fs.readFileSync(path.join(dir, `${name}.u16`));
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
}

/** One frame through the worker's frame task; `ref` = a drift reference from an earlier call. */
function measure(
  name: string,
  opts: { drift?: boolean; ref?: SharedArrayBuffer | null; saturationLevel?: number } = {},
): { qc: FrameQc; ref: SharedArrayBuffer | null } {
  const r = measureFrame(frame(name), cases.width, cases.height, {
    qc,
    saturationLevel: opts.saturationLevel ?? cfg.camera.saturation_level,
    offset: cfg.camera.offset,
    drift: opts.drift,
    driftReference: opts.ref,
  });
  return { qc: r.qc, ref: r.newReference };
}

function driftOf(refName: string, curName: string): FrameQc['drift'] {
  const { ref } = measure(refName, { drift: true });
  return measure(curName, { drift: true, ref }).qc.drift;
}

describe('drift on real frames (known sub-pixel shifts, scikit-image as the reference)', () => {
  it('every real shift within ±20 px is reported, RMS error <= 0.1 px, also with 1 % saturated or fixed hot pixels', () => {
    let se = 0;
    let seSk = 0;
    let nSk = 0;
    let n = 0;
    const missed: string[] = [];
    const byKind = new Map<string, { se: number; n: number }>();
    let minConf = Infinity;
    let seen = 0;
    for (const c of cases.drift) {
      seen++;
      const d = driftOf(`${c.name}r`, `${c.name}c`);
      if (!d?.valid) {
        missed.push(`${c.name} (z ${c.z}, ${c.extra}, confidence ${d?.confidence.toFixed(1)})`);
        continue;
      }
      minConf = Math.min(minConf, d.confidence);
      if (c.truth !== 'exact') continue; // neighbour planes: the PSF itself moves by up to 0.25 px
      se += (d.dx - c.dx) ** 2 + (d.dy - c.dy) ** 2;
      const k = byKind.get(c.extra) ?? { se: 0, n: 0 };
      byKind.set(c.extra, { se: k.se + (d.dx - c.dx) ** 2 + (d.dy - c.dy) ** 2, n: k.n + 2 });
      if (c.extra === 'none') {
        // scikit-image has no outlier handling: compare on clean frames only
        seSk += (c.skimage_dx - c.dx) ** 2 + (c.skimage_dy - c.dy) ** 2;
        nSk += 2;
      }
      n += 2;
    }
    // >= 99 % of real shifts reported: with 52 cases, that is all of them.
    expect(seen).toBe(printed.drift);
    expect(n).toBeGreaterThan(0);
    expect(missed, 'real shifts not reported').toEqual([]);
    const rms = Math.sqrt(se / n);
    console.log(
      `drift on real frames: ${cases.drift.length} cases, RMS error ${rms.toFixed(3)} px (${[...byKind].map(([k, v]) => `${k} ${Math.sqrt(v.se / v.n).toFixed(3)}`).join(', ')}; scikit-image on the clean ones: ${Math.sqrt(seSk / nSk).toFixed(3)} px); lowest confidence ${minConf.toFixed(1)}`,
    );
    expect(rms).toBeLessThanOrEqual(0.1);
  });

  it('unshifted real frames with 0.1-1 % saturated or hot pixels: no reported drift above 0.25 px', () => {
    const wrong: string[] = [];
    let seen = 0;
    for (const c of cases.null) {
      seen++;
      const d = driftOf(`${c.name}r`, `${c.name}c`);
      if (d?.valid && Math.hypot(d.dx, d.dy) > 0.25)
        wrong.push(
          `${c.name} (${c.kind} ${c.fraction * 100}%, z ${c.z}): (${d.dx.toFixed(2)}, ${d.dy.toFixed(2)}) at confidence ${d.confidence.toFixed(1)}`,
        );
    }
    expect(seen).toBe(printed.null);
    expect(wrong).toEqual([]);
  });
});

describe('drift confidence on unrelated real frames (the noise floor)', () => {
  it('pairs of empty real planes (camera noise and fixed pattern only): no shift above 0.25 px is reported', () => {
    // f0_z are the raw planes; 0-11 and 50-60 hold no bead, only the camera's noise and pattern.
    const empty = [...Array.from({ length: 12 }, (_, z) => z), ...Array.from({ length: 11 }, (_, i) => 50 + i)];
    const conf: number[] = [];
    let reported = 0;
    const wrong: string[] = [];
    for (let i = 0; i < empty.length; i++) {
      const { ref } = measure(`f0_${empty[i]}`, { drift: true });
      for (let j = i + 1; j < empty.length; j++) {
        const d = measure(`f0_${empty[j]}`, { drift: true, ref }).qc.drift!;
        conf.push(d.confidence);
        if (d.valid) reported++;
        // The camera's fixed pattern is static: a confident shift of ~0 is the truth, any other is false.
        if (d.valid && Math.hypot(d.dx, d.dy) > 0.25)
          wrong.push(`planes ${empty[i]} vs ${empty[j]}: (${d.dx.toFixed(2)}, ${d.dy.toFixed(2)}) at ${d.confidence.toFixed(1)}`);
      }
    }
    conf.sort((a, b) => a - b);
    console.log(
      `whitened PSR on ${conf.length} pairs of empty real planes: median ${conf[conf.length >> 1].toFixed(2)}, p99 ${conf[Math.floor(conf.length * 0.99)].toFixed(2)}, max ${conf[conf.length - 1].toFixed(2)}; reported ${reported}`,
    );
    expect(wrong).toEqual([]);
  });
});

describe('saturation and exposure on real frames (numpy counts)', () => {
  it('saturated count, min, max and mean are exact at each camera clipping level', () => {
    expect(cases.saturation.length).toBe(printed.saturation);
    for (const c of cases.saturation) {
      const q = measure(c.name, { saturationLevel: c.level }).qc;
      const n = cases.width * cases.height;
      expect(Math.round(q.saturatedRatio * n), c.name).toBe(c.saturated);
      expect(q.min).toBe(c.min);
      expect(q.max).toBe(c.max);
      expect(q.mean).toBeCloseTo(c.mean, 6);
    }
  });
});

describe('focus on real frames (scipy DCT and Sobel as the reference)', () => {
  it('DCTS and Tenengrad equal the reference on every plane, in focus and defocused', () => {
    expect(cases.focus.length).toBe(printed.focus);
    for (const c of cases.focus) {
      const q = measure(c.name).qc;
      expect(Math.abs(q.focus.dcts / c.dcts - 1), `${c.name} dcts`).toBeLessThan(1e-6);
      expect(Math.abs(q.focus.tenengrad / c.tenengrad - 1), `${c.name} tenengrad`).toBeLessThan(1e-6);
    }
  });

  /** Focus of every plane of the real stack, at each defocus sigma. */
  function stackFocus(sigma: number): number[] {
    const m = cfg.qc.focus[0];
    return cases.focus
      .filter((c) => c.sigma === sigma)
      .sort((a, b) => a.z - b.z)
      .map((c) => measure(c.name).qc.focus[m]);
  }

  /** Replays stacks through the baseline and the alert's hysteresis; returns the alert's transitions. */
  function replay(stacks: Map<number, number>[]): { fired: number[]; cleared: number[] } {
    const { low } = focusLevels(cfg.qc.thresholds.focus_drop_ratio);
    const base = new FocusBaseline(() => low);
    const alert = new FocusHysteresis(() => cfg.qc.thresholds.focus_drop_ratio);
    const fired: number[] = [];
    const cleared: number[] = [];
    stacks.forEach((planes, t) => {
      const r = base.closeStack(planes);
      if (r === null) return;
      const was = alert.firing;
      const on = alert.step(r);
      if (on && !was) fired.push(t);
      if (!on && was) cleared.push(t);
    });
    return { fired, cleared };
  }

  /** A real stack per timepoint: axial jitter of ±1 plane, 20 % of planes missing (QC sampled, frames lost). */
  function realStacks(focusByZ: number[][], pick: (t: number) => number, count: number, seed: number): Map<number, number>[] {
    const rnd = mulberry32(seed);
    const out: Map<number, number>[] = [];
    for (let t = 0; t < count; t++) {
      const f = focusByZ[pick(t)];
      const jitter = Math.floor(rnd() * 3) - 1;
      const planes = new Map<number, number>();
      for (let z = 0; z < f.length; z++) {
        if (rnd() < 0.2) continue;
        planes.set(z, f[Math.min(f.length - 1, Math.max(0, z + jitter))]);
      }
      out.push(planes);
    }
    return out;
  }

  it('focus_lost: never during 10 minutes of unchanged real stacks; fires within one stack of a real defocus (sigma 2 and 3 px)', () => {
    const f = [stackFocus(0), stackFocus(2), stackFocus(3)];
    // 10 minutes at one 61-plane stack every 2 s (300 stacks), three seeds.
    for (const seed of [1, 2, 3]) {
      const calm = replay(realStacks(f, () => 0, 300, seed));
      expect(calm.fired, `seed ${seed}: focus_lost fired on an unchanged acquisition`).toEqual([]);
    }
    for (const sigma of [1, 2]) {
      // In focus for 20 stacks, defocused for 10, in focus again.
      const r = replay(realStacks(f, (t) => (t >= 20 && t < 30 ? sigma : 0), 50, 7 + sigma));
      expect(r.fired, `defocus sigma ${sigma === 1 ? 2 : 3} px`).toEqual([20]);
      expect(r.cleared.length, 'cleared once focus is back').toBe(1);
      expect(r.cleared[0]).toBeGreaterThanOrEqual(30);
      expect(r.cleared[0]).toBeLessThanOrEqual(30 + FOCUS_CLEAR_STACKS);
    }
  });
});

describe('focus_lost end to end on real stacks (a separate producer process writing the ring)', () => {
  it('30 real 61-plane stacks, defocused (sigma 2 px) at t 12-17: one summary per t in order; fires once at the first measured defocused stack, clears within 2 measured stacks of focus returning', async () => {
    const ring = shmPath('realfocus');
    const T = 30;
    const { app, rec } = await startTestApp({ source: `shm:${ring}`, storage: { enabled: false } });
    // Alerts are raised while a stack-qc event is handled: attribute each to the stack that follows it.
    const seq: { kind: 'alert' | 'stack'; t?: number; active?: boolean; rel?: number | null }[] = [];
    app.bus.on('alert', (e) => {
      if (e.name === 'focus_lost' && !e.update) seq.push({ kind: 'alert', active: e.active });
    });
    app.bus.on('stack-qc', (e) => seq.push({ kind: 'stack', t: e.t, rel: e.qc.focusRelative }));
    try {
      const py = spawn(
        'python3',
        [
          path.join(ROOT, 'test/fixtures/raw_ring_writer.py'),
          ring,
          String(cases.width),
          String(cases.height),
          String(cases.planes),
          String(T * cases.planes),
          'real',
        ],
        {
          stdio: ['pipe', 'ignore', 'pipe'],
          env: {
            ...process.env,
            GO_ON_STDIN: '1',
            START_DELAY: '0',
            SLOTS: '64',
            FRAME_SLEEP: '0.003',
            FRAMES_DIR: dir,
            DEFOCUS_FROM: '12',
            DEFOCUS_TO: '18',
            DEFOCUS_SIGMA: '2',
          },
        },
      );
      let err = '';
      py.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      await waitFor(() => app.pipeline.status().attached, 30000, 'the sidecar attached');
      py.stdin.end('go\n');
      expect(await exited(py), err).toBe(0);
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) === 1, 60000, 'the acquisition finished');
    } finally {
      await app.stop();
      fs.rmSync(ring, { force: true });
      fs.rmSync(`${ring}.lock`, { force: true });
    }
    const transitions: { t: number; active: boolean }[] = [];
    for (let i = 0; i < seq.length; i++) {
      if (seq[i].kind !== 'alert') continue;
      const next = seq.slice(i + 1).find((x) => x.kind === 'stack');
      transitions.push({ t: next?.t ?? -1, active: seq[i].active! });
    }
    const s = rec.events['acquisition-finished']![0].summary;
    const stacks = seq.filter((x) => x.kind === 'stack');
    const why = `transitions ${JSON.stringify(transitions)}; stacks ${JSON.stringify(stacks.map((x) => [x.t, x.rel === null ? null : Number(x.rel!.toFixed(2))]))}; summary ${JSON.stringify(s)}`;
    // One summary per timepoint, in order, however the workers completed the planes.
    expect(
      stacks.map((x) => x.t),
      why,
    ).toEqual(Array.from({ length: T }, (_, t) => t));
    // Under load QC is sampled (focus skipped on some planes): "within one stack" counts measured stacks.
    const measured = (from: number) => stacks.filter((x) => x.t! >= from && x.rel !== null).map((x) => x.t!);
    expect(transitions.length, why).toBe(2);
    expect(transitions[0], why).toEqual({ t: measured(12)[0], active: true });
    expect(transitions[0].t, why).toBeLessThan(18);
    expect(transitions[1].active).toBe(false);
    expect(transitions[1].t, why).toBeGreaterThanOrEqual(18);
    expect(transitions[1].t, why).toBeLessThanOrEqual(measured(18)[1]);
  }, 120000);
});
