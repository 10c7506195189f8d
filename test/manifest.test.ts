/**
 * The completion manifest: written last in the store's root, every file listed with a size and a
 * SHA-256 that sha256sum (coreutils, an independent implementation) agrees with, counts equal to the
 * summary, one QC entry per stack, valid against docs/manifest.schema.json (python jsonschema).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, openArray, readPlane, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => { for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true }); });

function allFiles(dir: string, root = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const full = path.join(dir, d.name);
    return d.isDirectory() ? allFiles(full, root) : [path.relative(root, full)];
  });
}

describe('completion manifest', () => {
  it('spimstream-manifest.json lists every file with its true size and SHA-256, the losses, a QC entry per stack, and validates against its schema', async () => {
    const out = tmpDir('manifest');
    cleanup.push(out);
    const { app, rec } = await startTestApp({ source: 'sim', storage: { out }, sim: { width: 128, height: 96, z_planes: 4, channels: 2, timepoints: 5, fps: 200 } });
    try {
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 60000, 'the acquisition finished');
    } finally {
      await app.stop();
    }
    const [dir] = storeDirs(out);
    const file = path.join(dir, 'spimstream-manifest.json');
    await waitFor(() => fs.existsSync(file), 20000, 'the manifest');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    const s = rec.events['acquisition-finished']![0].summary;
    expect(m.complete).toBe(true);
    expect(m.frames.received).toBe(s.framesReceived);
    expect(m.frames.lost.overrun + m.frames.lost.gap + m.frames.lost.torn).toBe(s.framesOverrun + s.framesGap + s.framesTorn);
    expect(Object.values(m.frames.unstored as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(s.framesUnstored);
    expect(m.stacks).toHaveLength(5 * 2);
    // Every file of the store except the manifest, and nothing else; sizes and hashes as sha256sum says.
    const onDisk = allFiles(dir).filter((f) => f !== 'spimstream-manifest.json').sort();
    expect(m.files.map((f: { path: string }) => f.path)).toEqual(onDisk);
    const sums = spawnSync('sha256sum', onDisk, { cwd: dir, encoding: 'utf8' });
    expect(sums.status, sums.stderr).toBe(0);
    const want = new Map(sums.stdout.trim().split('\n').map((l) => { const [h, f] = l.split(/\s+\*?/); return [f, h] as const; }));
    for (const f of m.files as { path: string; bytes: number; sha256: string }[]) {
      expect(f.sha256, f.path).toBe(want.get(f.path));
      expect(f.bytes, f.path).toBe(fs.statSync(path.join(dir, f.path)).size);
    }
    expect(m.files.some((f: { path: string }) => f.path === 'zarr.json')).toBe(true);
    const v = spawnSync('python3', ['-c', 'import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))', file, path.join(ROOT, 'docs', 'manifest.schema.json')], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    // The store it describes reads back (a plane of the last timepoint is there).
    const arr = await openArray(dir);
    expect(arr.shape[0]).toBe(5);
    expect((await readPlane(arr, 4, 1, 3)).some((x) => x !== 0)).toBe(true);
  });
});
