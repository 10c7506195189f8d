/**
 * Lossless codec table (issue: fast codec path): MB/s on one core and ratio for every codec spimstream
 * offers and the references, on simulator chunks and on the REAL raw light-sheet stack in
 * ../shared/data/real/, with the order-0 entropy bound and the memory-copy bound.
 * Prints a human table and one JSON line. Usage: node dist/bench/codec-bench.js [--quick]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'fflate';
import { Blosc } from 'numcodecs';
import { SimScene } from '../src/ingest/sim-scene.js';
import { PACKAGE_ROOT } from '../src/package-info.js';
import { bloscEncode } from '../workers/codecs/blosc1.js';
import { innerCompressor, type InnerName } from '../workers/codecs/inner-compressors.js';
import { shuffle } from '../workers/codecs/shuffle.js';
import { entropyBits, machine, table, timeIt, timeItAsync } from './bench-util.js';
import { readTiffStack } from './tiff.js';

export interface CodecRow {
  data: string;
  codec: string;
  mb_s: number;
  ratio: number;
  of_bound: number;
}

/** A 32 x 256 x 256 uint16 chunk from the simulator, as the store's default inner chunk. */
export function simChunk(planes = 32, size = 256, background = 10): Uint16Array {
  const s = new SimScene({
    width: size,
    height: size,
    zPlanes: planes,
    channels: 1,
    blobs: Math.round((400 * size * size) / (512 * 512)),
    seed: 3,
    bitDepth: 16,
    offset: 100,
    peak: 1500,
    readNoise: 1.6,
    gain: 0.46,
  });
  const out = new Uint16Array(planes * size * size);
  const plane = new Uint16Array(size * size);
  for (let z = 0; z < planes; z++) {
    s.expose(s.renderClean(z, 0, { dx: 0, dy: 0, blur: 0, gainFactor: 1 }), plane, background);
    out.set(plane, z * size * size);
  }
  return out;
}

/** The real raw LLSM stack: $SPIMSTREAM_REAL_DATA, ../shared/data/real/ beside the checkout, or the test fixture copy. */
export function realStackPath(): string {
  if (process.env.SPIMSTREAM_REAL_DATA) return process.env.SPIMSTREAM_REAL_DATA;
  const shared = path.resolve(PACKAGE_ROOT, '..', 'shared', 'data', 'real', 'llsm-bead-psf-61x128x128.tif');
  return fs.existsSync(shared) ? shared : path.resolve(PACKAGE_ROOT, 'test', 'fixtures', 'real', 'llsm-bead-psf-61x128x128.tif');
}

export function realStack(): { chunk: Uint16Array; frames: Uint16Array[]; file: string } | null {
  const file = realStackPath();
  if (!fs.existsSync(file)) {
    process.stderr.write(
      `codec bench: real light-sheet stack not found at ${file} (set SPIMSTREAM_REAL_DATA); only simulator rows are printed\n`,
    );
    return null;
  }
  const t = readTiffStack(file);
  const frames = t.pages as Uint16Array[];
  const chunk = new Uint16Array(32 * t.width * t.height);
  for (let z = 0; z < 32; z++) chunk.set(frames[z], z * t.width * t.height);
  return { chunk, frames, file };
}

function nativeBlosc(
  raw: Uint8Array,
  cname: string,
  clevel: number,
  shuffleMode: number,
  blocksize: number,
): { bytes: number; seconds: number } | null {
  const src = path.join(PACKAGE_ROOT, 'bench', 'native', 'blosc_bench.c');
  const exe = path.join(os.tmpdir(), `spimstream-blosc-bench-${process.pid}`);
  try {
    if (!fs.existsSync(exe)) execFileSync('cc', ['-O2', '-o', exe, src, '-lblosc'], { stdio: 'pipe' });
    const data = path.join(os.tmpdir(), `spimstream-blosc-data-${process.pid}.raw`);
    fs.writeFileSync(data, raw);
    const out = execFileSync(exe, [data, cname, String(clevel), String(shuffleMode), '2', String(blocksize)], { encoding: 'utf8' })
      .trim()
      .split(' ');
    fs.rmSync(data, { force: true });
    return { bytes: Number(out[0]), seconds: Number(out[1]) };
  } catch {
    return null;
  }
}

export async function codecTable(quick: boolean): Promise<{ rows: CodecRow[]; nativeAvailable: boolean }> {
  const sets: { name: string; data: Uint16Array }[] = [{ name: 'sim 32x256x256', data: simChunk() }];
  const real = realStack();
  if (real) sets.push({ name: 'real LLSM 32x128x128', data: real.chunk });
  const rows: CodecRow[] = [];
  let nativeAvailable = false;
  const minMs = quick ? 150 : 500;
  for (const set of sets) {
    const raw = new Uint8Array(set.data.buffer, set.data.byteOffset, set.data.byteLength);
    const mb = raw.length / 1e6;
    const bound = 16 / entropyBits(set.data);
    const add = (codec: string, seconds: number, bytes: number) =>
      rows.push({ data: set.name, codec, mb_s: mb / seconds, ratio: raw.length / bytes, of_bound: raw.length / bytes / bound });
    const copy = new Uint8Array(raw.length);
    rows.push({
      data: set.name,
      codec: 'memory copy (bound)',
      mb_s: mb / timeIt(() => copy.set(raw), minMs),
      ratio: 1,
      of_bound: 1 / bound,
    });
    rows.push({ data: set.name, codec: 'order-0 entropy (ratio bound)', mb_s: 0, ratio: bound, of_bound: 1 });
    const tmp = new Uint8Array(raw.length);
    add(
      'byte shuffle only (JS kernel)',
      timeIt(() => shuffle(raw, tmp, 2, raw.length), minMs),
      raw.length,
    );
    for (const [name, inner, level, bs, split] of [
      ['blosc-zstd 1, whole chunk = one block (default)', 'zstd', 1, -1, false],
      ['blosc-zstd 1, 1 MiB blocks', 'zstd', 1, 1 << 20, false],
      ['blosc-zstd 1, 256 KiB blocks', 'zstd', 1, 1 << 18, false],
      ['blosc-zstd 3, 1 MiB blocks', 'zstd', 3, 1 << 20, false],
      ['blosc-lz4 (split, whole chunk)', 'lz4', 1, -1, true],
      ['blosc-zlib 1 (fflate, fallback)', 'zlib', 1, -1, false],
    ] as [string, InnerName, number, number, boolean][]) {
      const c = innerCompressor(inner);
      if (!c) continue;
      let out: Uint8Array = new Uint8Array(0);
      const s = timeIt(() => {
        out = bloscEncode(raw, c, { typesize: 2, clevel: level, shuffle: true, blocksize: bs < 0 ? raw.length : bs, split });
      }, minMs);
      add(`${name} [${c.implementation}]`, s, out.length);
    }
    // The pipeline's split: the frame task writes each plane already shuffled (WebAssembly SIMD, see
    // qc-bench), the encode task runs zstd alone on the chunk. Side by side with native c-blosc on the
    // same pre-shuffled bytes, one block: the remaining gap is the compressor's, not the shuffle's.
    const pre = new Uint8Array(raw.length);
    shuffle(raw, pre, 2, raw.length);
    const zc = innerCompressor('zstd');
    if (zc) {
      let out: Uint8Array = new Uint8Array(0);
      const s = timeIt(() => {
        out = bloscEncode(pre, zc, { typesize: 2, clevel: 1, shuffle: true, blocksize: 0, split: false, preShuffled: true, view: true });
      }, minMs);
      add(`blosc-zstd 1 on the pre-shuffled chunk, one block (the encode task) [${zc.implementation}]`, s, out.length);
    }
    const nat = nativeBlosc(pre, 'zstd', 1, 0, raw.length);
    if (nat) add('native c-blosc zstd 1, same pre-shuffled chunk, one block, no shuffle pass', nat.seconds, nat.bytes);
    const natSh = nativeBlosc(raw, 'zstd', 1, 1, raw.length);
    if (natSh) add("native c-blosc zstd 1 + shuffle, one block (the default's parameters)", natSh.seconds, natSh.bytes);
    let gz: Uint8Array = new Uint8Array(0);
    add(
      'gzip 1 (fflate, no shuffle)',
      timeIt(() => {
        gz = gzipSync(raw, { level: 1 });
      }, minMs),
      gz.length,
    );
    let dz: Buffer = Buffer.alloc(0);
    add(
      'node:zlib deflate 1 + shuffle',
      timeIt(() => {
        shuffle(raw, tmp, 2, raw.length);
        dz = zlib.deflateSync(tmp, { level: 1 });
      }, minMs),
      dz.length,
    );
    for (const cname of ['lz4', 'zstd']) {
      const codec = Blosc.fromConfig({ cname, clevel: 1, shuffle: 1, blocksize: 0 });
      let enc: Uint8Array = new Uint8Array(0);
      const s = await timeItAsync(async () => {
        enc = (await codec.encode(raw)) as Uint8Array;
      }, minMs);
      add(`numcodecs WASM blosc-${cname} 1 (see note)`, s, enc.length);
    }
    for (const [label, cname, level, sh, bs] of [
      ['native c-blosc zstd 1 + shuffle, 1 MiB', 'zstd', 1, 1, 1 << 20],
      ['native c-blosc zstd 1 + shuffle, auto blocks', 'zstd', 1, 1, 0],
      ['native c-blosc lz4 + shuffle, auto blocks', 'lz4', 1, 1, 0],
      ['native c-blosc zstd 1 + bitshuffle, auto', 'zstd', 1, 2, 0],
    ] as [string, string, number, number, number][]) {
      const r = nativeBlosc(raw, cname, level, sh, bs);
      if (r) {
        nativeAvailable = true;
        add(label, r.seconds, r.bytes);
      }
    }
  }
  return { rows, nativeAvailable };
}

/** How far the simulator's frames compress from the real stack, codec by codec (the noise model's calibration). */
export function calibration(rows: CodecRow[]): { codec: string; sim: number; real: number; diff_pct: string }[] {
  const out: { codec: string; sim: number; real: number; diff_pct: string }[] = [];
  for (const r of rows.filter((x) => x.data.startsWith('sim') && x.mb_s > 0 && x.ratio > 1.01)) {
    const real = rows.find((x) => x.data.startsWith('real') && x.codec === r.codec);
    if (real)
      out.push({ codec: r.codec, sim: r.ratio, real: real.ratio, diff_pct: (((r.ratio - real.ratio) / real.ratio) * 100).toFixed(1) });
  }
  return out;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const { rows, nativeAvailable } = await codecTable(quick);
  process.stdout.write(`spimstream codec bench — one core, ${JSON.stringify(machine())}\n\n`);
  process.stdout.write(
    `${table(rows.map((r) => ({ data: r.data, codec: r.codec, 'MB/s': r.mb_s, ratio: r.ratio, 'of bound': `${(r.of_bound * 100).toFixed(0)}%` })))}\n`,
  );
  if (!nativeAvailable)
    process.stdout.write('\nnative c-blosc: NOT AVAILABLE (apt-get install libblosc-dev to print the side-by-side rows)\n');
  process.stdout.write(
    'note: the numcodecs WASM encoder ignores the shuffle setting and hard-wires typesize 4 (see README); its rows are for speed reference only.\n',
  );
  const pick = (data: string, prefix: string) => rows.find((r) => r.data.startsWith(data) && r.codec.startsWith(prefix));
  const cal = calibration(rows);
  process.stdout.write(`\nsimulator calibration (ratio on sim chunks vs the real stack, per codec):\n${table(cal)}\n`);
  const summary = {
    bench: 'codec',
    machine: machine(),
    default_codec: 'blosc-zstd 1, whole chunk = one block',
    default_mb_s_per_core_sim: pick('sim', 'blosc-zstd 1, whole chunk')?.mb_s,
    default_ratio_sim: pick('sim', 'blosc-zstd 1, whole chunk')?.ratio,
    default_mb_s_per_core_real: pick('real', 'blosc-zstd 1, whole chunk')?.mb_s,
    default_ratio_real: pick('real', 'blosc-zstd 1, whole chunk')?.ratio,
    default_of_bound_real: pick('real', 'blosc-zstd 1, whole chunk')?.of_bound,
    lz4_mb_s_per_core_sim: pick('sim', 'blosc-lz4')?.mb_s,
    native_blosc: nativeAvailable,
    calibration_max_ratio_diff: Math.max(...cal.map((c) => Math.abs(Number(c.diff_pct)))),
    rows,
  };
  process.stdout.write(`\n${JSON.stringify(summary)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
