/**
 * The data path after the PC, on the engines facilities run: an acquisition offloaded to an S3
 * bucket (Swift + s3api), and once its manifest is verified there, `offload.on_complete` starts the
 * repository's Snakemake workflow (workflows/Snakefile) on a real one-node Slurm cluster (munge,
 * slurmctld, slurmd): each rule a Slurm job — verify the store at the destination against its
 * manifest, a maximum projection over z written as OME-Zarr, a report. The projection is checked
 * against the maximum computed here from the local store (zarrita; the workflow uses numpy and
 * tensorstore); the job ids and times reach the log and /metrics. A failing hand-off is counted
 * and does not hold up anything.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Slurm, startSlurm } from '../bench/slurm-aio.js';
import { type Swift, startSwift } from '../bench/swift-aio.js';
import { EventBus, type PipelineEvents } from '../src/pipeline/events.js';
import { runOnComplete } from '../src/offload/on-complete.js';
import { BIN, ROOT, exited, openArray, planeReader, shmPath, spawnNode, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';
import * as zarr from 'zarrita';
import { FileSystemStore } from '@zarrita/storage';

let swift: Swift;
let slurm: Slurm;
const dirs: string[] = [];
beforeAll(async () => {
  [swift, slurm] = await Promise.all([startSwift(), startSlurm()]);
}, 120_000);
afterAll(async () => {
  await Promise.all([swift?.stop(), slurm?.stop()]);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const W = 128;
const H = 96;
const Z = 8;
const C = 2;
const FRAMES = 64;

describe('hand-off: S3, then Snakemake on Slurm', () => {
  it('offloaded store verified, projected and reported by Slurm jobs; job ids and time in the log and /metrics', async () => {
    const ring = shmPath('handoff');
    const dir = tmpDir('handoff');
    const work = path.join(dir, 'work');
    fs.mkdirSync(work);
    dirs.push(dir, ring, `${ring}.lock`, `${ring}.seen`);
    const out = path.join(dir, 'data');
    const remote = `:s3,provider=Other,access_key_id='test:tester',secret_access_key=testing,endpoint='${swift.endpoint}':handoff/scope1/`;
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      log: { level: 'info' },
      storage: { out, chunk: [Z, H, W], shard: [Z, 0, 0] },
      offload: {
        destination: remote,
        on_complete_timeout_s: 300,
        on_complete: [
          'env',
          `SLURM_CONF=${slurm.conf}`,
          // Snakemake polls cluster jobs every 10 s, every 1 s with CI=true: the same path, sooner.
          'CI=true',
          'snakemake',
          '--snakefile',
          path.join(ROOT, 'workflows', 'Snakefile'),
          '--directory',
          work,
          '--jobs',
          '4',
          '--cluster',
          'sbatch --parsable --output=slurm-%j.out',
          '--latency-wait',
          '30',
        ],
      },
    });
    const done: PipelineEvents['on-complete'][] = [];
    app.bus.on('on-complete', (e) => done.push(e));
    try {
      const sim = spawnNode([
        BIN,
        'sim',
        '--ring',
        ring,
        ...['--width', String(W), '--height', String(H), '--z-planes', String(Z), '--channels', String(C)],
        ...['--fps', '200', '--frames', String(FRAMES), '--slots', '128'],
      ]);
      expect(await exited(sim), sim.output()).toBe(0);
      await waitFor(() => done.length === 1, 240_000, 'the hand-off (Snakemake on Slurm) to end');
      const [h] = done;
      const logged = (rec.events.log ?? []).map((e) => e.msg).join('\n');
      expect(h.code, logged.slice(-3000)).toBe(0);
      // verify, mip and report each ran as a Slurm job
      expect(h.jobs.length).toBe(3);
      expect(h.seconds).toBeGreaterThan(0);
      expect(logged).toMatch(
        new RegExp(`on_complete env exited with 0; Slurm jobs ${h.jobs.join(', ')}; \\d+ s after the acquisition ended`),
      );
      const metrics = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      expect(metrics).toMatch(/^spimstream_handoff_jobs_total\{camera="[^"]*"\} 3$/m);
      expect(metrics).toMatch(new RegExp(`^spimstream_handoff_last_job_id\\{camera="[^"]*"\\} ${h.jobs[2]}$`, 'm'));
      expect(metrics).toMatch(/^spimstream_handoff_failures_total\{camera="[^"]*"\} 0$/m);
      expect(metrics).toMatch(/^spimstream_handoff_running\{camera="[^"]*"\} 0$/m);
      expect(Number(/^spimstream_handoff_seconds\{camera="[^"]*"\} (\S+)$/m.exec(metrics)?.[1])).toBeCloseTo(h.seconds ?? 0, 1);
      expect(logged).not.toContain('secret_access_key=testing');
    } finally {
      await app.stop();
    }
    // The workflow's outputs against the local store (kept: no delete_local).
    const [local] = storeDirs(out);
    const name = path.basename(local);
    const verified = JSON.parse(fs.readFileSync(path.join(work, `${name}.verified.json`), 'utf8')) as { files: number };
    const manifest = JSON.parse(fs.readFileSync(path.join(local, 'spimstream-manifest.json'), 'utf8')) as { files: unknown[] };
    expect(verified.files).toBe(manifest.files.length);
    expect(fs.readFileSync(path.join(work, `${name}.report.md`), 'utf8')).toContain(`frames received by spimstream: ${FRAMES}`);
    const mip = await zarr.open.v3(zarr.root(new FileSystemStore(path.join(work, `${name}.mip.ome.zarr`))).resolve('0'), { kind: 'array' });
    expect(mip.shape).toEqual([FRAMES / (Z * C), C, H, W]);
    const group = JSON.parse(fs.readFileSync(path.join(work, `${name}.mip.ome.zarr`, 'zarr.json'), 'utf8'));
    expect(group.attributes.ome.version).toBe('0.5');
    const plane = planeReader(await openArray(local));
    for (let t = 0; t < FRAMES / (Z * C); t++)
      for (let c = 0; c < C; c++) {
        const want = new Uint16Array(W * H);
        for (let z = 0; z < Z; z++) {
          const p = await plane(t, c, z);
          for (let i = 0; i < want.length; i++) if (p[i] > want[i]) want[i] = p[i];
        }
        const got = (await zarr.get(mip, [t, c, null, null])).data as Uint16Array;
        expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer)), `t${t} c${c}`).toBe(0);
      }
  }, 300_000);

  it('a failing hand-off job: exit status, job id and failure counted; the next one runs', async () => {
    const bus = new EventBus();
    const ends: PipelineEvents['on-complete'][] = [];
    bus.on('on-complete', (e) => ends.push(e));
    const env = { SPIMSTREAM_STORE: '/nowhere', SPIMSTREAM_MANIFEST: '/nowhere/m.json', SPIMSTREAM_DESTINATION: 'x:y' };
    const sbatch = (code: number) => ['env', `SLURM_CONF=${slurm.conf}`, 'sbatch', '--wait', '-o', '/dev/null', '--wrap', `exit ${code}`];
    const failed = runOnComplete(sbatch(3), 120, env, bus, Date.now());
    const next = runOnComplete(sbatch(0), 120, env, bus, Date.now());
    expect(await failed).toBe(3);
    expect(await next).toBe(0);
    expect(ends.map((e) => e.code).sort()).toEqual([0, 3]);
    for (const e of ends) expect(e.jobs).toHaveLength(1);
    expect(new Set(ends.map((e) => e.jobs[0])).size).toBe(2);
  }, 180_000);
});
