/** Shared test plumbing: temp dirs, child processes, the app in-process, zarrita read-back. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as zarr from 'zarrita';
import { FileSystemStore } from '@zarrita/storage';
import { buildConfig, type Config } from '../src/config/config.js';
import { startApp, type App } from '../src/app.js';
import type { PipelineEvents } from '../src/pipeline/events.js';
import { PACKAGE_ROOT } from '../src/package-info.js';
import type { RingGeometry } from '../src/ingest/ring-layout.js';

import { testLogStream } from './test-log.js';
export const ROOT = PACKAGE_ROOT;
export const BIN = path.join(ROOT, 'bin', 'spimstream.js');

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `spimstream-${prefix}-`));
}

export function shmPath(name: string): string {
  return `/dev/shm/spimstream-test-${name}-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
}

/**
 * Mounts a small file system of its own at `dir` (the tests run as root): a disk to fill, to remount
 * read-only, or one that refuses O_DIRECT (ramfs). Throws, saying why, when it cannot. `unmountFs`
 * detaches it lazily, so a process still holding a file there cannot keep it mounted.
 */
export function mountFs(dir: string, o: { type?: 'tmpfs' | 'ramfs'; size?: string; ro?: boolean } = {}): void {
  const type = o.type ?? 'tmpfs';
  const opts = [o.size ? `size=${o.size}` : '', o.ro ? 'ro' : ''].filter(Boolean).join(',');
  const r = spawnSync('mount', ['-t', type, ...(opts ? ['-o', opts] : []), type, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot mount a ${o.size ?? ''} ${type} at ${dir} (needs root): ${r.stderr || r.error?.message}`);
}

export function unmountFs(dir: string): void {
  spawnSync('umount', ['-l', dir]);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A tiny ring for protocol tests: 16 x 16 uint8 frames, 8 slots, 2 planes, 1 channel, 1 view. */
export const SMALL_RING: RingGeometry = {
  width: 16,
  height: 16,
  dtype: 'uint8',
  bitDepth: 8,
  slotCount: 8,
  zPlanes: 2,
  channels: 1,
  views: 1,
};

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export interface Recorder {
  events: { [K in keyof PipelineEvents]?: PipelineEvents[K][] };
  lost: { overrun: number; gap: number; torn: number };
}

/** Starts the sidecar in this process with test-friendly defaults, recording its events. */
export async function startTestApp(
  overrides: Record<string, unknown>,
  opts: { overwrite?: boolean; append?: boolean } = {},
): Promise<{ app: App; rec: Recorder; cfg: Config }> {
  const cfg = buildConfig({ server: { port: 0 }, log: { level: 'warn' }, pipeline: { workers: 2 } }, overrides);
  const app = await startApp(cfg, { overwrite: opts.overwrite ?? false, append: opts.append ?? false, logTo: testLogStream });
  const rec: Recorder = { events: {}, lost: { overrun: 0, gap: 0, torn: 0 } };
  const names: (keyof PipelineEvents)[] = [
    'log',
    'frame-qc',
    'frames-lost',
    'frames-unstored',
    'acquisition-started',
    'acquisition-finished',
    'storage-error',
    'stack-qc',
    'alert',
    'chunk-stored',
  ];
  for (const n of names) {
    app.bus.on(n, (e: unknown) => {
      ((rec.events[n] ??= []) as unknown[]).push(e);
      if (n === 'frames-lost') rec.lost[(e as PipelineEvents['frames-lost']).reason] += (e as PipelineEvents['frames-lost']).count;
    });
  }
  return { app, rec, cfg };
}

export function spawnNode(args: string[], opts: { stdin?: boolean } = {}): ChildProcess & { output: () => string } {
  const p = spawn(process.execPath, args, { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], cwd: ROOT });
  let out = '';
  p.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  p.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return Object.assign(p, { output: () => out });
}

export function exited(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((r) => p.once('exit', (code) => r(code)));
}

export interface LoggedFrame {
  seq: number;
  counter: number;
  t: number;
  c: number;
  z: number;
  checksum: number;
}

export function readFrameLog(file: string): LoggedFrame[] {
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LoggedFrame);
}

export async function openArray(storeDir: string): Promise<zarr.Array<zarr.DataType, FileSystemStore>> {
  const store = new FileSystemStore(storeDir);
  return zarr.open.v3(zarr.root(store).resolve('0'), { kind: 'array' });
}

export async function readPlane(
  arr: zarr.Array<zarr.DataType, FileSystemStore>,
  t: number,
  c: number,
  z: number,
): Promise<Uint16Array | Uint8Array> {
  const r = await zarr.get(arr, [t, c, z, null, null]);
  return r.data as Uint16Array | Uint8Array;
}

/**
 * Reads planes through a one-stack cache: frames logged in t -> c -> z order cost one read (and one
 * decode of each chunk) per stack instead of one per plane.
 */
export function planeReader(
  arr: zarr.Array<zarr.DataType, FileSystemStore>,
): (t: number, c: number, z: number) => Promise<Uint16Array | Uint8Array> {
  let key = '';
  let stack: { data: Uint16Array | Uint8Array; plane: number } | null = null;
  return async (t, c, z) => {
    if (key !== `${t}/${c}` || !stack) {
      const r = await zarr.get(arr, [t, c, null, null, null]);
      stack = { data: r.data as Uint16Array | Uint8Array, plane: r.shape[1] * r.shape[2] };
      key = `${t}/${c}`;
    }
    return stack.data.subarray(z * stack.plane, (z + 1) * stack.plane);
  };
}

export function storeDirs(out: string): string[] {
  return fs.existsSync(out)
    ? fs
        .readdirSync(out)
        .filter((d) => d.endsWith('.ome.zarr'))
        .map((d) => path.join(out, d))
        .sort()
    : [];
}

/**
 * A random delay for kill tests that can be replayed: the seed comes from SPIMSTREAM_SEED or the
 * clock, and is printed with the delay (a failure says which seed to rerun with).
 */
export function replayableDelay(what: string, maxMs: number): number {
  const seed = Number(process.env.SPIMSTREAM_SEED ?? Date.now() % 1_000_000_007);
  let a = seed >>> 0;
  a = (a + 0x6d2b79f5) >>> 0;
  let t = Math.imul(a ^ (a >>> 15), 1 | a);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  const ms = Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * maxMs);
  console.log(`${what}: ${ms} ms (seed ${seed}; replay with SPIMSTREAM_SEED=${seed})`);
  return ms;
}

/**
 * The one line a command printed, for "one-line error" checks: fails on no output (''.split('\n') is
 * one line too) and on more than one line.
 */
export function oneLine(text: string): string {
  const t = text.trim();
  if (t === '') throw new Error('expected one line of output, got none');
  const lines = t.split('\n');
  if (lines.length !== 1) throw new Error(`expected one line of output, got ${lines.length}:\n${t}`);
  return lines[0];
}

export { freePort } from '../bench/bench-util.js';
