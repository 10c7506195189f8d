/**
 * `npm run bench`: every benchmark in turn — ring read, codecs (sim + real stack), QC kernels, and the
 * end-to-end sustained throughput — each printing its table; then one JSON summary line.
 * `npm run bench -- --quick` runs a short smoke version (used by the test suite to keep it from rotting).
 * `npm run bench -- --out /data/spim` writes the throughput steps' stores on that disk (default: temp dir);
 * `--rates 300,400` and `--seconds 30` change the steps; `--doc` writes docs/performance.json and the
 * docs/performance.md rendered from it (`--doc-dir DIR` elsewhere).
 */
import os from 'node:os';
import path from 'node:path';
import { peerTensorstore } from './peer-bench.js';
import { scaling } from './scaling-bench.js';
import { type BenchReport, type BenchSection, currentCommit, writePerformanceDoc } from './perf-doc.js';
import { calibration, codecTable } from './codec-bench.js';
import { qcTable } from './qc-bench.js';
import { ringReadTable } from './ring-read-bench.js';
import { scalingModel, throughput } from './throughput-bench.js';
import { diskLatency } from './disk-latency-bench.js';
import { ingestBench, ingestRows } from './ingest-bench.js';
import { writeBench } from './write-bench.js';
import { PACKAGE_ROOT } from '../src/package-info.js';
import { machine, table } from './bench-util.js';

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const arg = (n: string): string | undefined => {
    const i = process.argv.indexOf(`--${n}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const sections: BenchSection[] = [];
  // Every section printed is also kept for the generated docs/performance.md (--doc).
  const out = (text: string): void => {
    process.stdout.write(`${text}\n`);
    const m = /^## (.*)\n\n([\s\S]*)$/.exec(text);
    if (m) sections.push({ title: m[1], body: m[2] });
    else if (sections.length > 0) sections[sections.length - 1].body += `\n${text}`;
  };
  process.stdout.write(
    `spimstream benchmarks — ${JSON.stringify(machine())}${quick ? ' (quick smoke run: numbers are not representative)' : ''}\n\n`,
  );
  if (process.argv.includes('--scaling')) {
    const rows = await scaling(Number(arg('seconds') ?? 20), arg('out') ?? os.tmpdir());
    process.stdout.write(`## Scaling by worker count (2048², steps up to the first loss)\n\n${table(rows)}\n`);
    process.stdout.write(`${JSON.stringify({ bench: 'scaling', machine: machine(), rows })}\n`);
    return;
  }
  const ring = ringReadTable(quick);
  out(`## Ring read (pread into SharedArrayBuffer)\n\n${table(ring.rows)}\n`);
  const codecs = await codecTable(quick);
  out(
    `## Lossless codecs, one core\n\n${table(codecs.rows.map((r) => ({ data: r.data, codec: r.codec, 'MB/s': r.mb_s, ratio: r.ratio, 'of bound': `${(r.of_bound * 100).toFixed(0)}%` })))}\n`,
  );
  if (!codecs.nativeAvailable) out('native c-blosc: NOT AVAILABLE (apt-get install libblosc-dev for the side-by-side rows)\n');
  const cal = calibration(codecs.rows);
  out(`Simulator calibration — ratio on simulated chunks vs the real LLSM stack:\n\n${table(cal)}\n`);
  const qc = await qcTable(quick);
  out(`## QC kernels, 2048x2048 uint16, one core\n\n${table(qc.rows)}\n`);
  const rates = arg('rates')?.split(',').map(Number) ?? (quick ? [20] : [100, 200, 300, 400, 450, 500, 550, 600]);
  const tp = await throughput(rates, Number(arg('seconds') ?? (quick ? 3 : 20)), quick ? 512 : 2048, arg('out') ?? os.tmpdir());
  out(
    `## Sustained throughput (separate simulator process, default config, preview client, /metrics scraped)\n\n${table(
      tp.steps.map((s) => ({
        'target MB/s': s.target_mb_s,
        'input MB/s': s.input_mb_s,
        frames: s.frames,
        overrun: s.lost_overrun,
        gap: s.lost_gap,
        unstored: s.unstored,
        'QC sampled': s.qc_sampled,
        'store p50 ms': s.store_p50_ms,
        'store p99 ms': s.store_p99_ms,
        'QC p99 ms': s.qc_p99_ms,
        'preview p50 ms': s.preview_p50_ms,
        'preview p99 ms': s.preview_p99_ms,
        'CPU s/GB': s.cpu_s_per_gb,
        'RSS peak MB': s.rss_peak_mb,
        'written MB': s.written_mb,
        ratio: s.ratio,
      })),
    )}\n`,
  );
  const bestStep = tp.steps.filter((s) => s.lost_overrun + s.lost_gap + s.unstored === 0).at(-1);
  // The peer on the same machine in the same run: tensorstore storing the same frames, storage only.
  const peer = quick
    ? ({ ok: false, why: 'not run with --quick' } as const)
    : peerTensorstore({ width: 2048, zPlanes: 32, blocks: 16, threads: os.availableParallelism(), out: arg('out') ?? os.tmpdir() });
  out(
    `## Peer: tensorstore storing the same frames (2048², same chunks, shards and codec; input in RAM; no QC, no preview)\n\n${
      peer.ok
        ? table([
            {
              writer: `tensorstore ${peer.tensorstore}, ${peer.threads} threads, storage only`,
              'MB/s': peer.mb_s,
              'CPU s/GB': peer.cpu_s_per_gb,
              ratio: peer.ratio,
            },
            ...(bestStep
              ? [
                  {
                    writer: `spimstream, whole pipeline (the ${bestStep.input_mb_s.toFixed(0)} MB/s step above)`,
                    'MB/s': bestStep.input_mb_s,
                    'CPU s/GB': bestStep.cpu_s_per_gb,
                    ratio: bestStep.ratio,
                  },
                ]
              : []),
          ])
        : `not run: ${peer.why}`
    }${peer.ok && bestStep ? `\n\nspimstream's whole pipeline costs ${(bestStep.cpu_s_per_gb / peer.cpu_s_per_gb).toFixed(2)}× tensorstore's storage alone per GB.` : ''}\n`,
  );
  const model = bestStep ? scalingModel(bestStep) : null;
  if (bestStep && model) {
    const ringCeil = ring.ms2048 > 0 ? (2048 * 2048 * 2) / (ring.ms2048 / 1000) / 1e9 : 0;
    out(
      `## Scaling model (from the ${bestStep.input_mb_s.toFixed(0)} MB/s step's CPU per GB by thread kind)\n\nCPU s per raw GB: ${Object.entries(
        bestStep.cpu_s_per_gb_by_thread,
      )
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(
          ', ',
        )}; one ingest thread's ceiling ${model.summary.ingest_thread_ceiling_gb_s.toFixed(2)} GB/s (its pread alone: ${ringCeil.toFixed(2)} GB/s), the main thread's ${model.summary.main_thread_ceiling_gb_s.toFixed(2)} GB/s\n\n${table(model.rows)}\n`,
    );
  }
  const disk = await diskLatency(quick, arg('out') ?? os.tmpdir());
  out(
    `## Receipt -> durable on disk (512², 16-plane stacks, 52 MB/s; fdatasync before rename)\n\n16 MiB shard: ${disk.fsync.plain_ms.toFixed(1)} ms written + renamed, ${disk.fsync.durable_ms.toFixed(1)} ms with fdatasync + directory fsync\n\n${table(disk.steps)}\n`,
  );
  const writes = writeBench(quick, arg('out') ?? os.tmpdir());
  out(`## Output writes (shards of 4 z-blocks x 64 chunks of 1.4 MB, fdatasync; median of interleaved rounds)\n\n${table(writes)}\n`);
  const ingest = await ingestBench(quick, quick ? 3 : 20, PACKAGE_ROOT, arg('out') ?? os.tmpdir());
  out(
    `## Ingest under load (${quick ? '512², 25 MB/s' : '2048², 100 MB/s'}, one CPU hog at the same priority; then headless Chromium opening and closing the page)\n\n${table(ingestRows(ingest.steps))}\n`,
  );
  const best = tp.steps.filter((s) => s.lost_overrun + s.lost_gap + s.unstored === 0).at(-1);
  const pick = (data: string, prefix: string) => codecs.rows.find((r) => r.data.startsWith(data) && r.codec.startsWith(prefix));
  const summary = {
    bench: 'all',
    quick,
    machine: machine(),
    max_sustained_mb_s: tp.max,
    per_core_mb_s: tp.max / os.availableParallelism(),
    ratio: best?.ratio ?? 0,
    scaling: model?.summary ?? null,
    cpu_s_per_gb_by_thread: bestStep?.cpu_s_per_gb_by_thread ?? null,
    p99_latency_ms: best?.store_p99_ms ?? 0,
    preview_p99_ms: best?.preview_p99_ms ?? 0,
    rss_peak_mb: best?.rss_peak_mb ?? 0,
    cpu_s_per_gb: best?.cpu_s_per_gb ?? 0,
    peer_tensorstore_cpu_s_per_gb: peer.ok ? peer.cpu_s_per_gb : null,
    peer_tensorstore_mb_s: peer.ok ? peer.mb_s : null,
    cpu_per_gb_vs_tensorstore: peer.ok && bestStep ? bestStep.cpu_s_per_gb / peer.cpu_s_per_gb : null,
    codec_default_mb_s_per_core_sim: pick('sim', 'blosc-zstd 1, whole chunk')?.mb_s,
    codec_default_ratio_real: pick('real', 'blosc-zstd 1, whole chunk')?.ratio,
    codec_default_of_bound_real: pick('real', 'blosc-zstd 1, whole chunk')?.of_bound,
    codec_lz4_mb_s_per_core_sim: pick('sim', 'blosc-lz4')?.mb_s,
    qc_default_ms_per_2048_frame: qc.defaultMs,
    qc_stored_frame_ms_simd: qc.storedMs,
    write_cpu_s_per_gb_written: Object.fromEntries(writes.map((w) => [w.method, w['process CPU s/GB']])),
    on_disk_p99_ms: disk.steps[0]['p99 ms'],
    on_disk_p99_hog_ms: disk.steps[1]['p99 ms'],
    on_disk_max_hog_ms: disk.steps[1]['max ms'],
    ingest_min_ring_s_zero_overrun: ingest.min_ring_s,
    ingest_overrun: ingest.steps.reduce((a, x) => a + x.overrun + x.torn, 0),
    ingest_poll_gap_max_ms: Math.max(0, ...ingest.steps.map((x) => x.poll_gap_max_ms ?? 0)),
    fsync_16mib_extra_ms: disk.fsync.durable_ms - disk.fsync.plain_ms,
    ring_read_ms_2048: ring.ms2048,
    sim_vs_real_max_ratio_diff_pct: cal.length ? Math.max(...cal.map((c) => Math.abs(Number(c.diff_pct)))) : null,
  };
  if (process.argv.includes('--doc')) {
    const report: BenchReport = {
      date: new Date().toISOString(),
      commit: currentCommit(),
      machine: machine(),
      args: process.argv.slice(2).filter((a, i, all) => a !== '--doc' && a !== '--doc-dir' && all[i - 1] !== '--doc-dir'),
      quick,
      sections,
      summary,
    };
    const written = writePerformanceDoc(report, arg('doc-dir') ?? path.join(PACKAGE_ROOT, 'docs'));
    process.stderr.write(`wrote ${written.md} from ${written.json}\n`);
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

void main();
