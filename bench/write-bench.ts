/**
 * Output writes: what a shard costs the machine to write, by method, on the output disk. Each shard
 * is written as the pipeline writes it (one writev of 64 encoded chunks of ~1.4 MB per z-block, four
 * z-blocks, fdatasync, rename); the alternatives are larger coalesced writes and O_DIRECT (page-cache
 * bypass: 4 KiB-aligned buffers and lengths; the buffers come from a WebAssembly.Memory, the only
 * page-aligned memory JavaScript can get). Reports MB/s written, the process's CPU seconds per GB
 * written and the whole machine's (which includes the kernel's writeback threads).
 * Usage: node dist/bench/write-bench.js [--quick] [--out DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machine, table } from './bench-util.js';

const CHUNK = 1_400_000;
const CHUNKS_PER_BLOCK = 64;
const BLOCKS_PER_SHARD = 4;

function machineCpuSeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  return (f.reduce((a, b) => a + b, 0) - idle) / 100;
}

type Method = 'writev per z-block (today)' | 'one 8 MiB write at a time' | 'one chunk (1.4 MB) per write' | 'O_DIRECT, 4 KiB-aligned';

function writeShard(file: string, method: Method, chunks: Uint8Array[], aligned: Uint8Array): number {
  const tmp = `${file}.tmp`;
  const direct = method === 'O_DIRECT, 4 KiB-aligned';
  const fd = fs.openSync(tmp, direct ? fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_DIRECT : 'w');
  let pos = 0;
  try {
    for (let b = 0; b < BLOCKS_PER_SHARD; b++) {
      if (method === 'writev per z-block (today)') {
        pos += fs.writevSync(fd, chunks, pos);
      } else if (method === 'one 8 MiB write at a time') {
        for (let i = 0; i < chunks.length; i += 6) pos += fs.writevSync(fd, chunks.slice(i, i + 6), pos);
      } else if (method === 'one chunk (1.4 MB) per write') {
        for (const c of chunks) pos += fs.writeSync(fd, c, 0, c.length, pos);
      } else {
        // The block's chunks staged into an aligned buffer, written whole (the tail is padded and
        // trimmed by ftruncate at the end; a real writer would carry the unaligned tail over).
        const bytes = chunks.length * CHUNK;
        const n = Math.ceil(bytes / 4096) * 4096;
        let off = 0;
        for (const c of chunks) {
          aligned.set(c, off);
          off += c.length;
        }
        fs.writeSync(fd, aligned, 0, n, pos);
        pos += bytes;
      }
    }
    if (direct) fs.ftruncateSync(fd, pos);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return pos;
}

export function writeBench(quick: boolean, outDir = os.tmpdir()): Record<string, string | number>[] {
  const dir = fs.mkdtempSync(path.join(outDir, 'spimstream-write-bench-'));
  // --quick (the test suite's smoke run): 8 chunks per block, one shard per round (~45 MB per method).
  const chunks = Array.from({ length: quick ? 8 : CHUNKS_PER_BLOCK }, (_, i) => {
    const c = new Uint8Array(CHUNK);
    for (let k = 0; k < c.length; k += 4096) c[k] = (i * 31 + k) & 0xff;
    return c;
  });
  const mem = new WebAssembly.Memory({ initial: Math.ceil((CHUNKS_PER_BLOCK * CHUNK + 8192) / 65536) });
  const aligned = new Uint8Array(mem.buffer);
  const shards = quick ? 1 : 6;
  const methods: Method[] = [
    'writev per z-block (today)',
    'one 8 MiB write at a time',
    'one chunk (1.4 MB) per write',
    'O_DIRECT, 4 KiB-aligned',
  ];
  const runs = new Map<Method, { mb_s: number; proc: number; mach: number }[]>(methods.map((m) => [m, []]));
  const notes = new Map<Method, string>();
  try {
    // Round 0 warms the page cache up (the first writes of a run pay for evicting what it held) and
    // is not counted; then the methods take turns, so drift of the shared VM hits each alike.
    for (let round = 0; round <= (quick ? 1 : 3); round++) {
      for (const method of methods) {
        let bytes = 0;
        const u0 = process.cpuUsage();
        const m0 = machineCpuSeconds();
        const t0 = performance.now();
        try {
          for (let s = 0; s < shards; s++) bytes += writeShard(path.join(dir, `shard-${s}`), method, chunks, aligned);
        } catch (e) {
          notes.set(method, `not supported here: ${(e as Error).message.split('\n')[0]}`);
          continue;
        }
        const sec = (performance.now() - t0) / 1000;
        const u = process.cpuUsage(u0);
        const gb = bytes / 1e9;
        if (round > 0)
          runs.get(method)?.push({ mb_s: bytes / 1e6 / sec, proc: (u.user + u.system) / 1e6 / gb, mach: (machineCpuSeconds() - m0) / gb });
        for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;
  const rows = methods.map((method) => {
    const r = runs.get(method) ?? [];
    return {
      method,
      'MB/s': median(r.map((x) => x.mb_s)),
      'process CPU s/GB': median(r.map((x) => x.proc)),
      'machine CPU s/GB': median(r.map((x) => x.mach)),
      note: notes.get(method) ?? `median of ${r.length}`,
    };
  });
  return rows;
}

function main(): void {
  const i = process.argv.indexOf('--out');
  const rows = writeBench(process.argv.includes('--quick'), i >= 0 ? process.argv[i + 1] : os.tmpdir());
  process.stdout.write(
    `spimstream output writes — ${JSON.stringify(machine())}\n\n${table(rows)}\n\n${JSON.stringify({ bench: 'write', machine: machine(), rows })}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) main();
