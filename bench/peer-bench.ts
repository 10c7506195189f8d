/**
 * A peer, side by side: tensorstore (Python, from the local package index, in a venv this bench makes
 * itself under the temp directory and keeps for the next run) writing the simulator's 2048² frames in
 * spimstream's layout and codec, storage only (bench/peer_tensorstore.py). Returns its MB/s and CPU
 * seconds per raw GB, or why it could not run.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SimScene, simCamera } from '../src/ingest/sim-scene.js';
import { PACKAGE_ROOT } from '../src/package-info.js';

export type PeerResult =
  | { ok: true; mb_s: number; cpu_s_per_gb: number; ratio: number; threads: number; blocks: number; tensorstore: string }
  | { ok: false; why: string };

/** A venv with tensorstore and numpy (made once, kept in the temp directory). */
function peerPython(): string | { why: string } {
  const venv = path.join(os.tmpdir(), 'spimstream-peer-venv');
  const py = path.join(venv, 'bin', 'python');
  const has = () => spawnSync(py, ['-c', 'import tensorstore, numpy'], { encoding: 'utf8' }).status === 0;
  if (fs.existsSync(py) && has()) return py;
  const mk = spawnSync('python3', ['-m', 'venv', venv], { encoding: 'utf8' });
  if (mk.status !== 0) return { why: `python3 -m venv failed: ${(mk.stderr || mk.stdout).trim().split('\n').at(-1)}` };
  const pip = spawnSync(py, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', 'tensorstore', 'numpy'], { encoding: 'utf8' });
  if (pip.status !== 0 || !has())
    return { why: `pip install tensorstore numpy failed: ${(pip.stderr || pip.stdout).trim().split('\n').at(-1)}` };
  return py;
}

export function peerTensorstore(o: { width: number; zPlanes: number; blocks: number; threads: number; out: string }): PeerResult {
  const py = peerPython();
  if (typeof py !== 'string') return { ok: false, why: py.why };
  // The throughput bench's simulator (bin/spimstream sim, src/ingest/simulator.ts): 2048², 32 planes, 6400 blobs.
  const scene = new SimScene({
    width: o.width,
    height: o.width,
    zPlanes: o.zPlanes,
    channels: 2,
    blobs: Math.round((6400 * o.width * o.width) / (2048 * 2048)),
    seed: 1,
    bitDepth: 16,
    offset: 100, // the sim command's default
    ...simCamera(16),
  });
  const dir = fs.mkdtempSync(path.join(o.out, 'spimstream-peer-'));
  try {
    const raw = path.join(dir, 'frames.raw');
    const frame = new Uint16Array(o.width * o.width);
    const fd = fs.openSync(raw, 'w');
    for (let z = 0; z < o.zPlanes; z++) {
      scene.expose(scene.renderClean(z, 0, { dx: 0, dy: 0, blur: 0, gainFactor: 1 }), frame, 10);
      fs.writeSync(fd, new Uint8Array(frame.buffer));
    }
    fs.closeSync(fd);
    const args = [path.join(PACKAGE_ROOT, 'bench', 'peer_tensorstore.py'), raw, String(o.width), String(o.width), String(o.zPlanes)];
    const r = spawnSync(py, [...args, String(o.blocks), path.join(dir, 'store'), String(o.threads)], { encoding: 'utf8' });
    if (r.status !== 0) return { ok: false, why: `peer_tensorstore.py exited ${r.status}: ${r.stderr.trim().split('\n').at(-1)}` };
    const j = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number | string>;
    return {
      ok: true,
      mb_s: Number(j.mb_s),
      cpu_s_per_gb: Number(j.cpu_s_per_gb),
      ratio: Number(j.ratio),
      threads: o.threads,
      blocks: o.blocks,
      tensorstore: String(j.tensorstore),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
