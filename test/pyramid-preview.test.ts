/**
 * With the pyramid on, the live view is level 1: each raw preview (fixed window 0..255, so a byte is
 * the value) equals the stored level-1 plane of its frame, read back with zarrita; saturated pixels
 * are still marked from the full-resolution frame (a 2 x 2 mean would hide a lone one).
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as zarr from 'zarrita';
import { FileSystemStore } from '@zarrita/storage';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { mulberry32 } from '../src/ingest/sim-scene.js';
import { decodePreview } from '../src/server/preview-protocol.js';
import { shmPath, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { force: true, recursive: true });
});

const W = 66;
const H = 50;
const T = 5;
const SAT = 250;

function frame(t: number): Uint16Array {
  const rnd = mulberry32(11 + t);
  const px = new Uint16Array(W * H);
  for (let i = 0; i < px.length; i++) px[i] = Math.floor(rnd() * 240);
  // a few lone saturated pixels: in a 2 x 2 mean they fall well below the saturation level
  for (let k = 0; k < 6; k++) px[Math.floor(rnd() * px.length)] = SAT;
  return px;
}

describe('live view from the pyramid', () => {
  it('a 2-D stream previewed at half size shows level 1 exactly, with saturation from the full frame', async () => {
    const out = tmpDir('pyr-preview');
    const ring = shmPath('pyr-preview');
    cleanup.push(out, ring);
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      ring_wait_seconds: 10,
      camera: { saturation_level: SAT },
      preview: { max_size: 40, fps: 50 },
      storage: { out, codec: 'blosc-zstd', chunk: [2, 32, 32], shard: [0, 0, 0], name: 'pv', levels: 1, downsample: 'mean' },
    });
    const previews: ReturnType<typeof decodePreview>[] = [];
    try {
      const w = RingWriter.create(ring, {
        width: W,
        height: H,
        dtype: 'uint16',
        bitDepth: 16,
        slotCount: 8,
        zPlanes: 1,
        channels: 1,
        views: 1,
      });
      await waitFor(() => app.pipeline.status().attached, 10000, 'attach');
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`);
      ws.on('message', (d: Buffer, bin: boolean) => {
        if (bin) previews.push(decodePreview(new Uint8Array(d)));
      });
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', fps: 50, format: 'raw', window: [0, 255] }));
      await new Promise((r) => setTimeout(r, 300)); // the subscription reaches the hub before the first frame
      w.startAcquisition();
      for (let t = 0; t < T; t++) {
        w.publish(new Uint8Array(frame(t).buffer), { cameraCounter: t, timestampNs: Date.now() * 1e6, t, c: 0, z: 0, view: 0, flags: 0 });
        await waitFor(() => previews.some((p) => p.t === t && p.kind === 'plane'), 20000, `the preview of t=${t}`);
      }
      w.finishAcquisition();
      w.close();
      ws.close();
      await waitFor(() => (rec.events['acquisition-finished']?.length ?? 0) >= 1, 30000, 'acquisition finalized');
    } finally {
      await app.stop();
    }
    const [dir] = storeDirs(out);
    const level1 = await zarr.open.v3(zarr.root(new FileSystemStore(dir)).resolve('1'), { kind: 'array' });
    const w2 = Math.ceil(W / 2);
    const h2 = Math.ceil(H / 2);
    for (let t = 0; t < T; t++) {
      const p = previews.find((x) => x.t === t && x.kind === 'plane');
      expect(p, `preview of t=${t}`).toBeDefined();
      expect([p!.width, p!.height, p!.format, p!.level]).toEqual([w2, h2, 'raw', 1]);
      const want = (await zarr.get(level1, [t, 0, 0, null, null])).data as Uint16Array;
      const diff = Array.from(p!.data).findIndex((v, i) => v !== want[i]);
      expect(diff, `t=${t}: first preview pixel that is not level 1's`).toBe(-1);
      // saturated cells: every 2 x 2 window of the frame holding a pixel >= SAT
      const f = frame(t);
      const cells = new Set<number>();
      for (let i = 0; i < f.length; i++) if (f[i] >= SAT) cells.add(Math.floor(Math.floor(i / W) / 2) * w2 + Math.floor((i % W) / 2));
      expect([...p!.saturated], `t=${t} saturated cells`).toEqual([...cells].sort((a, b) => a - b));
      expect(Math.max(...want)).toBeLessThan(SAT); // the mean alone would have shown none of them
    }
  });
});
