/**
 * The live pyramid of one acquisition: levels 1..n, each built from the level above where the data
 * already is. The frame tasks leave each stored plane's first reduction in its z-block's `ext`;
 * when a z-block is sealed, one reduce job turns its planes into the next level's planes (written
 * chunk-major into that level's z-block, with their own reductions for the level after). A level's
 * z-block is encoded by the same workers and handed to the same store as level 0's once all its
 * planes are in, or when its timepoint closes (a lost or unstored plane then stays fill value).
 * Owns the level z-blocks and their buffers; the stage above owns the level-0 blocks.
 */
import { encodeBlock } from './block-encoder.js';
import type { Inflight } from './inflight.js';
import type { OutputSlab } from './output-slab.js';
import type { WorkerPool } from './worker-pool.js';
import { levelCount, pyramidLayouts, tilesX, tilesY, type ArrayLayout } from '../zarr/layout.js';
import type { ResolvedCodec } from '../../workers/codecs/chunk-codec.js';
import { chunkBytesOf, type TileGeometry } from '../../workers/kernels/tiles.js';
import type { DownsampleMethod } from '../../workers/kernels/pyramid.js';

/** A sealed z-block of any level, as the reduce job reads it. */
export interface SourceBlock {
  t: number;
  c: number;
  view: number;
  zb: number;
  ext: SharedArrayBuffer | null;
  planes: number;
  present: number[];
}

interface LevelBlock {
  t: number;
  c: number;
  view: number;
  zb: number;
  buffer: SharedArrayBuffer;
  nonZero: SharedArrayBuffer;
  ext: SharedArrayBuffer | null;
  present: number[];
  expected: number;
  written: number;
  pending: number;
  sealed: boolean;
}

interface Level {
  layout: ArrayLayout;
  geometry: TileGeometry;
  open: Map<string, LevelBlock>;
  /** Reduces into this level and its blocks' encodes, by `t/c/view`. */
  work: Map<string, Set<Promise<void>>>;
  free: { buffer: SharedArrayBuffer; nonZero: SharedArrayBuffer; ext: SharedArrayBuffer | null }[];
}

export interface PyramidOptions {
  /** Layouts of levels 0..n and their tile geometries. */
  layouts: ArrayLayout[];
  geometries: TileGeometry[];
  method: DownsampleMethod;
  workers: WorkerPool;
  codec: ResolvedCodec;
  slab: OutputSlab | null;
  inflight: Inflight;
  /** A level block's encoded chunks (tile order; empty = all fill value). */
  deliver: (level: number, b: { t: number; c: number; view: number; zb: number }, tiles: Uint8Array[]) => void;
  log: (level: 'warn' | 'error', msg: string) => void;
  /** Each reduce job's seconds (ok) or a failed block (not ok), for /metrics. */
  report: (level: number, seconds: number, ok: boolean) => void;
}

export class PyramidStage {
  private readonly levels: Level[] = [];

  constructor(private readonly o: PyramidOptions) {
    for (let k = 0; k < o.layouts.length; k++) {
      this.levels.push({ layout: o.layouts[k], geometry: o.geometries[k], open: new Map(), work: new Map(), free: [] });
    }
  }

  /** Levels below level 0. */
  get depth(): number {
    return this.levels.length - 1;
  }

  /** The next level's planes from sealed block `s` of level k - 1; resolves when `s`'s buffers may be reused. */
  reduceFrom(k: number, s: SourceBlock): Promise<void> {
    if (k > this.depth || !s.ext) return Promise.resolve();
    const above = this.levels[k - 1];
    const lv = this.levels[k];
    const halveZ = above.layout.shape[2] > 1;
    const czAbove = above.geometry.cz;
    const first = halveZ ? (s.zb * czAbove) / 2 : s.zb * czAbove;
    const n = halveZ ? (s.planes + 1) >> 1 : s.planes;
    const cz = lv.geometry.cz;
    const b = this.block(k, s.t, s.c, s.view, Math.floor(first / cz));
    const z0 = first - b.zb * cz;
    b.pending++;
    const job = this.o.workers
      .reduce({
        kind: 'reduce',
        src: s.ext,
        width: above.geometry.width,
        height: above.geometry.height,
        planes: s.planes,
        present: s.present,
        halveZ,
        method: this.o.method,
        dst: { block: b.buffer, nonZero: b.nonZero, geometry: lv.geometry, z0, ext: b.ext },
      })
      .then(
        (seconds) => {
          for (let j = 0; j < n; j++) b.present[z0 + j] = 1;
          b.written += n;
          this.o.report(k, seconds, true);
        },
        (e: unknown) => {
          this.o.report(k, 0, false);
          this.o.log(
            'error',
            `pyramid level ${k} t=${s.t} c=${s.c} planes ${first}..${first + n - 1}: ${(e as Error).message}; they stay fill value`,
          );
        },
      )
      .finally(() => {
        b.pending--;
        this.maybeReady(k, b);
      });
    this.track(lv, s, job);
    return job;
  }

  private block(k: number, t: number, c: number, view: number, zb: number): LevelBlock {
    const lv = this.levels[k];
    const key = `${t}/${c}/${view}/${zb}`;
    let b = lv.open.get(key);
    if (b) return b;
    const g = lv.geometry;
    const bufs = lv.free.pop() ?? {
      buffer: new SharedArrayBuffer(g.tilesX * g.tilesY * chunkBytesOf(g)),
      nonZero: new SharedArrayBuffer(g.tilesX * g.tilesY),
      ext: k < this.depth ? new SharedArrayBuffer(g.cz * ((g.width + 1) >> 1) * ((g.height + 1) >> 1) * 4) : null,
    };
    new Uint8Array(bufs.nonZero).fill(0);
    b = {
      t,
      c,
      view,
      zb,
      ...bufs,
      present: new Array<number>(g.cz).fill(0),
      expected: Math.min(g.cz, lv.layout.shape[2] - zb * g.cz),
      written: 0,
      pending: 0,
      sealed: false,
    };
    lv.open.set(key, b);
    return b;
  }

  private maybeReady(k: number, b: LevelBlock): void {
    if (b.pending > 0 || (!b.sealed && b.written < b.expected)) return;
    const lv = this.levels[k];
    const key = `${b.t}/${b.c}/${b.view}/${b.zb}`;
    if (lv.open.get(key) !== b) return; // already handed out
    lv.open.delete(key);
    const encoded = encodeBlock(b, lv.geometry, this.o.slab, this.o.workers, this.o.codec).then(
      (tiles) => this.o.deliver(k, b, tiles),
      (e: unknown) => {
        this.o.report(k, 0, false);
        this.o.log(
          'error',
          `pyramid level ${k} t=${b.t} c=${b.c} z-block ${b.zb}: encoding failed (${(e as Error).message}); it stays fill value`,
        );
      },
    );
    const next = this.reduceFrom(k + 1, { t: b.t, c: b.c, view: b.view, zb: b.zb, ext: b.ext, planes: b.expected, present: b.present });
    const job = Promise.all([encoded, next]).then(() => {
      lv.free.push({ buffer: b.buffer, nonZero: b.nonZero, ext: b.ext });
    });
    this.track(lv, b, job);
  }

  private track(lv: Level, s: { t: number; c: number; view: number }, job: Promise<void>): void {
    const key = `${s.t}/${s.c}/${s.view}`;
    let set = lv.work.get(key);
    if (!set) {
      set = new Set();
      lv.work.set(key, set);
    }
    const w = set;
    w.add(job);
    this.o.inflight.track(job);
    void job.finally(() => {
      w.delete(job);
      if (w.size === 0 && lv.work.get(key) === w) lv.work.delete(key);
    });
  }

  /**
   * Level 0 of (t, c, view) is complete (every block reduced): finishes each level in turn (blocks
   * still missing planes are sealed, their lost planes fill value). Resolves once every level's
   * blocks are with the store.
   */
  async closeTimepoint(t: number, c: number, view: number): Promise<void> {
    const key = `${t}/${c}/${view}`;
    for (let k = 1; k <= this.depth; k++) {
      const lv = this.levels[k];
      await settle(lv.work.get(key));
      for (const b of [...lv.open.values()]) {
        if (b.t === t && b.c === c && b.view === view) {
          b.sealed = true;
          this.maybeReady(k, b);
        }
      }
      await settle(lv.work.get(key));
    }
  }

  /** Closes every timepoint still open (acquisition end, after level 0 has settled). */
  async closeAll(): Promise<void> {
    const keys = new Set<string>();
    for (const lv of this.levels.slice(1)) {
      for (const b of lv.open.values()) keys.add(`${b.t}/${b.c}/${b.view}`);
      for (const k of lv.work.keys()) keys.add(k);
    }
    for (const key of keys) {
      const [t, c, view] = key.split('/').map(Number);
      await this.closeTimepoint(t, c, view);
    }
  }
}

async function settle(set: Set<Promise<void>> | undefined): Promise<void> {
  while (set && set.size > 0) await Promise.allSettled([...set]);
}

/** Levels 0..n of an acquisition (n from storage.levels) with each level's tile geometry. */
export function planPyramid(
  l0: ArrayLayout,
  g0: TileGeometry,
  levels: number | 'auto',
  chunkZyx: number[],
  shardZyx: number[] | null,
  shuffled: (chunkBytes: number) => boolean,
): { layouts: ArrayLayout[]; geometries: TileGeometry[] } {
  const n = levelCount(levels, l0.shape[3], l0.shape[4], l0.chunk[3], l0.chunk[4]);
  const layouts = pyramidLayouts(l0, n, chunkZyx, shardZyx);
  const geometries = layouts.map((l, k): TileGeometry => {
    if (k === 0) return g0;
    const [, , cz, cy, cx] = l.chunk;
    return {
      width: l.shape[4],
      height: l.shape[3],
      bytesPerPixel: l.bytesPerPixel,
      cz,
      cy,
      cx,
      tilesX: tilesX(l),
      tilesY: tilesY(l),
      shuffled: shuffled(cz * cy * cx * l.bytesPerPixel),
    };
  });
  return { layouts, geometries };
}

/** Each level's factor on z, y, x from level 0 (z stops halving at one plane). */
export function levelFactors(layouts: ArrayLayout[]): [number, number, number][] {
  const out: [number, number, number][] = [[1, 1, 1]];
  for (let k = 1; k < layouts.length; k++) {
    const [fz, fy, fx] = out[k - 1];
    out.push([layouts[k - 1].shape[2] > 1 ? fz * 2 : fz, fy * 2, fx * 2]);
  }
  return out;
}
