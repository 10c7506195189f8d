// An acquisition with several views has one store per view: each gets its own manifest, listing
// its own files (hashes true on disk) and its own view's stacks — so the offload sends every
// view's metadata and manifest, not only view 0's.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, type AcquisitionSummary } from '../src/pipeline/events.js';
import { ManifestWriter } from '../src/offload/manifest.js';
import { tmpDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('manifest per view', () => {
  it('two views: two manifests, each with its own files and stacks', () => {
    const out = tmpDir('manifest-views');
    dirs.push(out);
    const bus = new EventBus();
    const manifests = new ManifestWriter(bus, {
      version: 'test',
      ring: () => '/dev/shm/r',
      pixelSizeUm: () => 0.1,
      timeStepS: () => null,
      config: () => ({}),
      redact: (s) => s,
    });
    const written: string[] = [];
    bus.on('manifest-written', (e) => written.push(e.storePath));
    const roots = [0, 1].map((v) => path.join(out, `acq_view${v}.ome.zarr`));
    bus.emit('acquisition-started', { id: 1, name: 'acq', storePath: roots[0], viewStores: roots, geometry: {} });
    const gfp1 = { camera: 'cam', channel: 'GFP', view: '1' };
    bus.emit('alert', { name: 'focus_lost', stream: gfp1, active: true, message: 'focus 0.4 of usual', value: 0.4 });
    bus.emit('alert', { name: 'focus_lost', stream: gfp1, active: true, message: 'focus 0.3 of usual', value: 0.3, update: true });
    bus.emit('alert', { name: 'focus_lost', stream: gfp1, active: false, message: 'focus back', value: 0.9 });
    bus.emit('alert', { name: 'disk_low', stream: null, active: true, message: '1.0 GB free', value: 1e9 });
    roots.forEach((r, v) => {
      fs.mkdirSync(path.join(r, '0', 'c', '0'), { recursive: true });
      fs.writeFileSync(path.join(r, 'zarr.json'), JSON.stringify({ attributes: { spimstream: { view: v } } }));
      const shard = Buffer.alloc(1000 + v, v + 1);
      const f = path.join(r, '0', 'c', '0', '0');
      fs.writeFileSync(f, shard);
      bus.emit('shard-written', { path: f, bytes: shard.length, sha256: sha(shard) });
      for (let t = 0; t < 2 + v; t++) {
        bus.emit('stack-qc', {
          stream: { camera: 'cam', channel: 'ch0', view: String(v) },
          t,
          qc: {
            planes: 4,
            focusPlanes: 4,
            bestFocusZ: 1,
            meanFocus: 2,
            maxSaturatedRatio: 0,
            meanSignal: 100,
            focusRelative: null,
            excluded: null,
          },
        });
      }
    });
    const summary: AcquisitionSummary = {
      framesReceived: 10,
      framesOverrun: 0,
      framesGap: 0,
      framesTorn: 0,
      qcSampled: 3,
      qcSampledReasons: { 'workers-behind': 2, 'encodes-behind': 1 },
      framesUnstored: 0,
      bytesReceived: 1,
      bytesWritten: 1,
      compressionRatio: 1,
      durationSeconds: 1,
    };
    manifests.finish({ id: 1, name: 'acq', storePath: roots[0], summary });
    expect(written).toEqual(roots);
    // The QC report lists each alert once, with its times: one cleared, one still firing at the end.
    const report = fs.readFileSync(path.join(roots[0], 'qc-report.html'), 'utf8');
    const rows = [...report.matchAll(/<tr><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>/g)].map((m) => m.slice(1));
    expect(rows.map((r) => [r[0], r[1]])).toEqual([
      ['focus_lost', 'GFP/1'],
      ['disk_low', '–'],
    ]);
    expect(rows[0][2]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(rows[0][3]).toMatch(/UTC$/);
    expect(rows[1][3]).toBe('still firing at the end');
    // The summary says why QC was sampled; so does each view's manifest.
    expect(report).toContain('<th>QC sampled</th><td>3 (workers-behind: 2, encodes-behind: 1)</td>');
    roots.forEach((r, v) => {
      const m = JSON.parse(fs.readFileSync(path.join(r, 'spimstream-manifest.json'), 'utf8')) as {
        acquisition: { store: string; view: number; views: number };
        stacks: { view: string }[];
        files: { path: string; bytes: number; sha256: string }[];
        metadata: { view: number };
        frames: { qc_sampled: number; qc_sampled_reasons: Record<string, number> };
      };
      expect(m.frames).toMatchObject({ qc_sampled: 3, qc_sampled_reasons: { 'workers-behind': 2, 'encodes-behind': 1 } });
      expect(m.acquisition).toMatchObject({ store: path.basename(r), view: v, views: 2 });
      expect(m.metadata.view).toBe(v);
      expect(m.stacks.length, "this view's stacks only").toBe(2 + v);
      expect(m.stacks.every((s) => s.view === String(v))).toBe(true);
      expect(m.files.map((f) => f.path).sort()).toEqual(['0/c/0/0', 'qc-report.html', 'zarr.json']);
      for (const f of m.files) {
        const b = fs.readFileSync(path.join(r, f.path));
        expect(b.length, f.path).toBe(f.bytes);
        expect(sha(b), f.path).toBe(f.sha256);
      }
    });
  });
});
