import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import sharp from 'sharp';
import { decodePreview } from '../src/server/preview-protocol.js';
import { MAX_BUFFERED_BYTES } from '../src/server/ws-hub.js';
import { sleep, startTestApp, waitFor } from './helpers.js';

/** Connects with the message handler attached before 'open' (the server greets at once). */
function connect(port: number, onMessage: (d: Buffer, bin: boolean) => void = () => undefined): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    ws.on('message', onMessage);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function p95(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(0.95 * (s.length - 1))] ?? 0;
}

describe('live preview over WebSockets', () => {
  it('previews arrive at the requested rate and decode to the announced size; a stalled client costs no latency or memory', async () => {
    const { app } = await startTestApp({
      source: 'sim',
      storage: { enabled: false },
      preview: { max_size: 800, fps: 10 },
      sim: { width: 1600, height: 1000, z_planes: 8, channels: 2, fps: 30, blobs: 300 },
    });
    try {
      await waitFor(() => app.pipeline.status().attached, 10000, 'attach');
      const previews: ReturnType<typeof decodePreview>[] = [];
      const hello: Record<string, unknown>[] = [];
      const ws = await connect(app.port, (d: Buffer, bin: boolean) => {
        if (bin) previews.push(decodePreview(new Uint8Array(d)));
        else {
          const m = JSON.parse(d.toString()) as Record<string, unknown>;
          if (m.type === 'hello') hello.push(m);
        }
      });
      await waitFor(() => hello.length > 0, 5000, 'hello');
      ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', fps: 4, format: 'jpeg' }));
      await sleep(500);
      previews.length = 0;
      const t0 = Date.now();
      await sleep(3000);
      const secs = (Date.now() - t0) / 1000;
      const rate = previews.filter((p) => p.kind === 'plane').length / secs;
      // Never faster than asked; on a loaded 2-core machine a preview may be late, so only a floor of half.
      expect(rate).toBeGreaterThan(4 * 0.5);
      expect(rate).toBeLessThan(4 * 1.25);
      for (const p of previews.slice(0, 3)) {
        // 1600 x 1000 binned by ceil(1600 / 800) = 2 -> 800 x 500
        expect([p.width, p.height, p.level]).toEqual([800, 500, 0]); // binned from the frame (no pyramid)
        const meta = await sharp(Buffer.from(p.data)).metadata();
        expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 800, 500]);
        expect(p.hi).toBeGreaterThan(p.lo);
      }

      // Phase 1: pipeline latency and memory without a stalled client.
      const measure = async (ms: number) => {
        const lat: number[] = [];
        const off = app.bus.on('frame-qc', (e) => lat.push(e.latencyMs));
        const rss0 = process.memoryUsage().rss;
        await sleep(ms);
        off();
        return { p95: p95(lat), frames: lat.length, rssGrowth: process.memoryUsage().rss - rss0 };
      };
      const before = await measure(3000);
      // Phase 2: a client that subscribes to raw previews at a high rate and then stops reading.
      const stalled = await connect(app.port);
      stalled.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', fps: 40, format: 'raw' }));
      await sleep(200);
      (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
      const skipped0 = app.pipeline.counters.framesOverrun;
      const during = await measure(5000);
      expect(during.frames).toBeGreaterThan(before.frames * 0.8 * (5000 / 3000));
      expect(during.p95).toBeLessThan(Math.max(2 * before.p95, before.p95 + 50));
      expect(during.rssGrowth).toBeLessThan(128 * 1024 * 1024);
      // what the server holds for the stalled client stays bounded: one buffer limit plus one message
      const held = Math.max(...[...app.hub.clients].map((c) => c.ws.bufferedAmount));
      expect(held).toBeLessThan(MAX_BUFFERED_BYTES + 800 * 500 + 64 * 1024);
      expect(app.pipeline.counters.framesOverrun).toBe(skipped0);
      // backpressure was really exercised: the stalled client missed previews instead of queueing them
      expect(app.hub.skippedTotal).toBeGreaterThan(0);
      // the healthy client kept receiving previews while the other one stalled
      const n0 = previews.length;
      await sleep(1000);
      expect(previews.length).toBeGreaterThan(n0);
      stalled.terminate();
      ws.close();
    } finally {
      await app.stop();
    }
  });

  it('a completed z-stack yields a max-intensity projection preview', async () => {
    const { app } = await startTestApp({
      source: 'sim',
      storage: { enabled: false },
      preview: { max_size: 128 },
      sim: { width: 256, height: 192, z_planes: 6, channels: 1, fps: 30, blobs: 200 },
    });
    try {
      const got: ReturnType<typeof decodePreview>[] = [];
      const ws = await connect(app.port, (d: Buffer, bin: boolean) => {
        if (bin) got.push(decodePreview(new Uint8Array(d)));
      });
      ws.send(JSON.stringify({ type: 'subscribe', stream: 'GFP/0', fps: 2, format: 'raw', mip: true }));
      await waitFor(() => got.some((p) => p.kind === 'mip') && got.some((p) => p.kind === 'plane'), 15000, 'a MIP and a plane preview');
      const mip = got.find((p) => p.kind === 'mip')!;
      const plane = got.find((p) => p.kind === 'plane')!;
      // 256 x 192 at max 128 px: both binned by 2 to 128 x 96, raw 8-bit
      expect([mip.width, mip.height, mip.data.length]).toEqual([128, 96, 128 * 96]);
      expect([plane.width, plane.height]).toEqual([128, 96]);
      // the projection's bright end is at least that of a single (mean-binned) plane
      expect(mip.hi).toBeGreaterThanOrEqual(plane.hi);
      ws.close();
    } finally {
      await app.stop();
    }
  });

  it('refuses WebSocket upgrades from a foreign origin and answers bad messages with an error', async () => {
    const { app } = await startTestApp({ source: 'sim', storage: { enabled: false }, sim: { width: 64, height: 64, fps: 10 } });
    try {
      const err = await new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`, { headers: { origin: 'http://evil.example' } });
        ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
        ws.on('open', () => resolve('open'));
        ws.on('error', () => undefined);
      });
      expect(err).toBe('403');
      const msgs: Record<string, unknown>[] = [];
      const ws = await connect(app.port, (d: Buffer, bin: boolean) => {
        if (!bin) msgs.push(JSON.parse(d.toString()) as Record<string, unknown>);
      });
      ws.send('not json');
      ws.send(JSON.stringify({ type: 'launch-missiles' }));
      await waitFor(() => msgs.filter((m) => m.type === 'error').length >= 2, 3000, 'two errors');
      expect(msgs.filter((m) => m.type === 'error').map((m) => m.message)).toEqual([
        'message is not valid JSON',
        'unknown message type "launch-missiles"',
      ]);
      ws.close();
    } finally {
      await app.stop();
    }
  });
});
