/**
 * The live volume on the wire: a viewer that subscribes with `volume: true` gets one binary SPVL
 * message per completed stack, the stack's planes max-binned so that no side exceeds
 * preview.volume_max — checked voxel for voxel against the binned maximum computed here from the
 * frames the producer published (a bright bead in one 5 x 5 block stays at its full value). A viewer
 * that did not ask gets none; a bad `volume` field is refused in one line.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { decodeVolume, type VolumeMessage } from '../src/server/volume-protocol.js';
import { openArray, readPlane, shmPath, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

const W = 320;
const H = 200;
const Z = 12;
const T = 3;
const BEAD = { x: 203, y: 117, z: 7 };

function frame(t: number, z: number): Uint16Array {
  const px = new Uint16Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) px[y * W + x] = 100 + ((x * 7 + y * 13 + z * 3 + t) % 50);
  if (z === BEAD.z) px[BEAD.y * W + BEAD.x] = 60000 - t;
  return px;
}

/** The reference: each step x step block's maximum, per plane (written independently of the kernel). */
function binnedStack(t: number, step: number): Uint16Array {
  const w = Math.ceil(W / step);
  const h = Math.ceil(H / step);
  const out = new Uint16Array(w * h * Z);
  for (let z = 0; z < Z; z++) {
    const px = frame(t, z);
    for (let by = 0; by < h; by++)
      for (let bx = 0; bx < w; bx++) {
        let m = 0;
        for (let y = by * step; y < Math.min(H, (by + 1) * step); y++)
          for (let x = bx * step; x < Math.min(W, (bx + 1) * step); x++) m = Math.max(m, px[y * W + x]);
        out[z * w * h + by * w + bx] = m;
      }
  }
  return out;
}

/** A ring of W x H x Z stacks (removed after the test). */
function ringOf(name: string): { ring: string; w: RingWriter } {
  const ring = shmPath(name);
  cleanup.push(ring, `${ring}.lock`, `${ring}.seen`);
  const w = RingWriter.create(ring, {
    width: W,
    height: H,
    dtype: 'uint16',
    bitDepth: 16,
    slotCount: 64,
    zPlanes: Z,
    channels: 1,
    views: 1,
  });
  return { ring, w };
}

type Viewer = { ws: WebSocket; volumes: VolumeMessage[]; json: Record<string, unknown>[] };

function openViewer(port: number): Promise<Viewer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const got: Viewer = { ws, volumes: [], json: [] };
    ws.on('message', (d: Buffer, binary: boolean) => {
      if (!binary) got.json.push(JSON.parse(d.toString()) as Record<string, unknown>);
      else if (d.subarray(0, 4).toString() === 'SPVL') got.volumes.push(decodeVolume(new Uint8Array(d)));
    });
    ws.on('open', () => resolve(got));
    ws.on('error', reject);
  });
}

// Not stored: the volume comes from the JS kernel. Stored: from the frame's fused SIMD pass (here
// with a step of 8, its vector path), and the store reads back bit-exact.
const runs = [
  { name: 'not stored', store: false, volumeMax: 64 },
  { name: 'stored (fused pass)', store: true, volumeMax: 40 },
];

describe.each(runs)('live volume over the WebSocket, $name', ({ store, volumeMax }) => {
  it('one max-binned volume per stack, voxel for voxel; none for a viewer that did not ask', async () => {
    const { ring, w } = ringOf('volume');
    const out = tmpDir('volume');
    cleanup.push(out);
    const { app, cfg } = await startTestApp({
      source: `shm:${ring}`,
      storage: store ? { out } : { enabled: false },
      preview: { volume_max: volumeMax },
    });
    const viewer = await openViewer(app.port);
    const other = await openViewer(app.port);
    try {
      viewer.ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', volume: 'yes' }));
      await waitFor(() => viewer.json.some((m) => m.type === 'error'), 10_000, 'the refusal');
      expect(viewer.json.find((m) => m.type === 'error')?.message).toBe('subscribe: field "volume" must be true or false (got "yes")');
      viewer.ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', volume: true }));
      other.ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', mip: true }));
      await waitFor(() => viewer.json.some((m) => m.type === 'subscribed' && m.volume === true), 10_000, 'the subscription');
      await waitFor(() => other.json.some((m) => m.type === 'subscribed'), 10_000, 'the other subscription');
      await waitFor(() => app.pipeline.status().attached, 30_000, 'the sidecar to attach');
      w.startAcquisition();
      let n = 0;
      for (let t = 0; t < T; t++) {
        for (let z = 0; z < Z; z++, n++) {
          w.publish(new Uint8Array(frame(t, z).buffer), { cameraCounter: n, timestampNs: Date.now() * 1e6, t, c: 0, z, view: 0, flags: 0 });
          await new Promise((r) => setTimeout(r, 5));
        }
        // A stack takes seconds on a real scope: its QC summary (which sends the volume) comes
        // before the stack after next reuses its buffer.
        await waitFor(() => viewer.json.some((m) => m.type === 'stack' && m.t === t), 30_000, `stack ${t}'s summary`);
      }
      w.finishAcquisition();
      await waitFor(() => viewer.volumes.length >= T, 30_000, `${T} volumes`);
      const step = Math.ceil(W / volumeMax);
      for (const v of viewer.volumes) {
        expect([v.width, v.height, v.depth, v.step, v.view]).toEqual([Math.ceil(W / step), Math.ceil(H / step), Z, step, 0]);
        expect(v.voxelUm[0]).toBeCloseTo(cfg.pixel_size_um.x * step, 5);
        expect(v.voxelUm[2]).toBeCloseTo(cfg.pixel_size_um.z, 5);
        const want = binnedStack(v.t, step);
        expect(Buffer.compare(Buffer.from(v.data.buffer), Buffer.from(want.buffer)), `volume of t=${v.t}`).toBe(0);
        // The bead: its block at full value, where geometry says.
        expect(v.data[BEAD.z * v.width * v.height + Math.floor(BEAD.y / step) * v.width + Math.floor(BEAD.x / step)]).toBe(60000 - v.t);
      }
      expect(viewer.volumes.map((v) => v.t)).toEqual([0, 1, 2]);
      expect(other.volumes).toHaveLength(0);
    } finally {
      viewer.ws.close();
      other.ws.close();
      await app.stop();
      w.close();
    }
    if (store) {
      const arr = await openArray(storeDirs(out)[0]);
      for (let t = 0; t < T; t++)
        for (let z = 0; z < Z; z++) {
          const got = await readPlane(arr, t, 0, z);
          expect(
            Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(frame(t, z).buffer)),
            `t=${t} z=${z}`,
          ).toBe(0);
        }
    }
  }, 120_000);
});

describe('live volume byte budget', () => {
  it('a viewer over preview.volume_bytes_per_second gets fewer volumes, counted in /metrics', async () => {
    const { ring, w } = ringOf('volume-budget');
    // 100 kB/s against volumes of 320 x 200 x 12 voxels (1.5 MB, not binned): the first goes, the
    // next two come within the 15 s its debt takes to pay.
    const { app } = await startTestApp({
      source: `shm:${ring}`,
      storage: { enabled: false },
      preview: { volume_max: 320, volume_bytes_per_second: 1e5 },
    });
    const viewer = await openViewer(app.port);
    const skipped = async () => {
      const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      return Number(/spimstream_viewer_messages_skipped_total\{reason="volume-budget"\} (\d+)/.exec(text)?.[1] ?? -1);
    };
    try {
      viewer.ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', volume: true }));
      await waitFor(() => viewer.json.some((m) => m.type === 'subscribed'), 10_000, 'the subscription');
      await waitFor(() => app.pipeline.status().attached, 30_000, 'the sidecar to attach');
      expect(await skipped()).toBe(0);
      w.startAcquisition();
      const started = performance.now();
      for (let t = 0, n = 0; t < T; t++) {
        for (let z = 0; z < Z; z++, n++)
          w.publish(new Uint8Array(frame(t, z).buffer), { cameraCounter: n, timestampNs: Date.now() * 1e6, t, c: 0, z, view: 0, flags: 0 });
        await waitFor(() => viewer.json.some((m) => m.type === 'stack' && m.t === t), 30_000, `stack ${t}'s summary`);
      }
      w.finishAcquisition();
      await waitFor(async () => (await skipped()) === T - 1, 10_000, 'the over-budget volumes counted');
      expect(performance.now() - started, 'the stacks came faster than the budget pays a volume').toBeLessThan(15_000);
      await waitFor(() => viewer.volumes.length >= 1, 10_000, 'the first volume');
      expect(viewer.volumes.map((v) => [v.t, v.width, v.height, v.depth])).toEqual([[0, W, H, Z]]);
    } finally {
      viewer.ws.close();
      await app.stop();
      w.close();
    }
  });
});
