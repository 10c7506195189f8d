/**
 * `spimstream run`: composes the sidecar. Starts (or waits for) the ring producer, the worker pool,
 * the pipeline, the HTTP/WebSocket server and the exporters, and owns the life cycle: SIGINT/SIGTERM
 * stop intake, drain the workers, flush every buffered chunk and shard, finalize metadata, exit 0.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import type http from 'node:http';
import { EventBus } from './pipeline/events.js';
import { Pipeline } from './pipeline/pipeline.js';
import { WorkerPool } from './pipeline/worker-pool.js';
import { RingReader } from './ingest/ring-reader.js';
import { startPosition } from './ingest/ring-ingest.js';
import { RingFormatError } from './ingest/ring-layout.js';
import { lockRing } from './ingest/ring-lock.js';
import { diskFree } from './zarr/disk.js';
import { attachLogger } from './log.js';
import { StreamQc } from './qc/stream-qc.js';
import { AlertEngine } from './qc/alerts.js';
import { QcHistory } from './server/qc-history.js';
import { ManifestWriter } from './offload/manifest.js';
import { Metrics } from './server/metrics.js';
import { startHttpServer, type Route } from './server/http-server.js';
import { PreviewService } from './server/preview-service.js';
import { WsHub, streamList } from './server/ws-hub.js';
import { PACKAGE_ROOT, VERSION } from './package-info.js';
import type { Config } from './config/config.js';

export interface RunOptions {
  overwrite: boolean;
  append: boolean;
}

export interface App {
  bus: EventBus;
  alerts: AlertEngine;
  streamQc: StreamQc;
  hub: WsHub;
  reload(): { ok: boolean; message: string };
  pipeline: Pipeline;
  server: http.Server;
  port: number;
  sim: ChildProcess | null;
  stop(): Promise<void>;
}

/** Metadata form input: only the known keys, strings of at most 2000 characters. */
export function validateMetadata(body: unknown, keys: string[]): Record<string, string> | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body must be a JSON object';
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) {
    if (!keys.includes(k)) return `unknown metadata field "${k}"; allowed: ${keys.join(', ')}`;
    if (typeof v !== 'string') return `metadata field "${k}" must be a string`;
    if (v.length > 2000) return `metadata field "${k}" is longer than 2000 characters`;
    out[k] = v;
  }
  return out;
}


async function waitForRing(ringPath: string, seconds: number, bus: EventBus, stopped: () => boolean): Promise<RingReader | null> {
  const until = seconds > 0 ? Date.now() + seconds * 1000 : Infinity;
  let told = false;
  for (;;) {
    if (stopped()) return null;
    try {
      return RingReader.open(ringPath);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (e instanceof RingFormatError) {
        // A producer may be creating it right now; a persistently bad ring is reported and retried.
        if (!told) bus.emit('log', { level: 'error', msg: e.message });
        told = true;
      } else if (code === 'ENOENT') {
        if (!told) bus.emit('log', { level: 'info', msg: `waiting for ring ${ringPath} to appear` });
        told = true;
      } else {
        throw new Error(`cannot open ring ${ringPath}: ${(e as Error).message}`);
      }
    }
    if (Date.now() > until) throw new Error(`ring ${ringPath} did not appear (or stayed invalid) within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function startSimulatorProcess(cfg: Config, ringPath: string): ChildProcess {
  const s = cfg.sim;
  const args = [
    path.join(PACKAGE_ROOT, 'bin', 'spimstream.js'), 'sim', '--ring', ringPath,
    '--width', String(s.width), '--height', String(s.height), '--z-planes', String(s.z_planes),
    '--channels', String(s.channels), '--fps', String(s.fps), '--slots', String(s.slots),
    '--bit-depth', String(s.bit_depth), '--seed', String(s.seed), '--blobs', String(s.blobs),
    '--timepoints', String(s.timepoints), '--faults', JSON.stringify(s.faults), '--unlink', '--stdin-commands',
  ];
  return spawn(process.execPath, args, { stdio: ['pipe', 'inherit', 'inherit'] });
}

export async function startApp(cfg: Config, opts: RunOptions, reloadConfig?: () => Config): Promise<App> {
  const bus = new EventBus();
  attachLogger(bus, cfg.log.json, cfg.log.level as 'info');
  const simMode = cfg.source === 'sim';
  const ringPath = simMode ? `/dev/shm/spimstream-sim-${process.pid}` : cfg.source.slice(4);
  const workers = new WorkerPool(cfg.pipeline.workers);
  const pipeline = new Pipeline(cfg, bus, workers, ringPath, opts);
  if (pipeline.codec.fallbackReason) bus.emit('log', { level: 'warn', msg: `codec: ${pipeline.codec.fallbackReason}` });
  bus.emit('log', { level: 'info', msg: 'codec', fields: { requested: pipeline.codec.requested, effective: pipeline.codec.effective, implementation: pipeline.codec.implementation, clevel: pipeline.codec.clevel } });
  const streamQc = new StreamQc(bus, () => pipeline.header?.zPlanes ?? 1, () => cfg.qc.focus[0] ?? 'dcts', () => 1 - cfg.qc.thresholds.focus_drop_ratio);
  // After StreamQc: its last stacks are summarized on acquisition-finished, before the manifest is written.
  new ManifestWriter(bus, { version: VERSION, ring: () => (pipeline.header ? pipeline.ringPath : null), pixelSizeUm: () => cfg.pixel_size_um.x, config: () => ({ ...cfg, server: { ...cfg.server, token: cfg.server.token ? '***' : '' } }) });
  const alerts = new AlertEngine(bus, cfg, { ringFill: () => pipeline.ringFill, diskFree: () => (cfg.storage.enabled ? diskFree(cfg.storage.out) : null) });
  const metrics = new Metrics(bus, cfg.camera.name, { version: VERSION, codec: pipeline.codec.effective, codec_implementation: pipeline.codec.implementation }, {
    ringFillRatio: () => pipeline.ringFill,
    diskFreeBytes: () => (cfg.storage.enabled ? diskFree(cfg.storage.out) : null),
    previewClients: () => hub.count,
    framePoolInUseRatio: () => (pipeline.framePool ? pipeline.framePool.inUse / pipeline.framePool.capacity : 0),
    ingestMaxPollGapMs: () => pipeline.takeMaxPollGapMs(),
    blockPoolInUseRatio: () => pipeline.blockPoolInUseRatio(),
    streams: () => streamQc.streams.values(),
    focusMeasure: () => cfg.qc.focus[0] ?? 'dcts',
  });
  metrics.pixelSizeUm = cfg.pixel_size_um.x;
  let stopped = false;
  const routes: Route[] = [
    { method: 'GET', path: '/metrics', handle: async () => ({ status: 200, type: metrics.contentType, body: await metrics.text() }) },
    { method: 'GET', path: '/healthz', handle: async () => ({ status: 200, body: { status: 'ok', version: VERSION } }) },
    {
      method: 'GET', path: '/readyz', handle: async () => {
        const s = pipeline.status();
        const ok = s.attached && s.storeWritable;
        return { status: ok ? 200 : 503, body: { ready: ok, ring_attached: s.attached, store_writable: s.storeWritable, ring: s.ringPath, storage_error: pipeline.storingDisabledReason } };
      },
    },
    { method: 'GET', path: '/api/status', handle: async () => ({ status: 200, body: { ...pipeline.status(), counters: { ...pipeline.counters }, codec: pipeline.codec } }) },
  ];
  /** Reloads thresholds (the only settings that change without a restart); frames keep flowing. */
  const reload = (): { ok: boolean; message: string; thresholds?: Config['qc']['thresholds'] } => {
    if (!reloadConfig) return { ok: false, message: 'no config file to reload from' };
    try {
      const next = reloadConfig();
      cfg.qc.thresholds = next.qc.thresholds;
      alerts.reload(cfg);
      bus.emit('log', { level: 'info', msg: 'thresholds reloaded', fields: { ...cfg.qc.thresholds } });
      return { ok: true, message: 'thresholds reloaded', thresholds: cfg.qc.thresholds };
    } catch (e) {
      bus.emit('log', { level: 'error', msg: `reload refused: ${(e as Error).message}` });
      return { ok: false, message: (e as Error).message };
    }
  };
  const previews = new PreviewService(cfg, bus, pipeline, workers);
  const history = new QcHistory(bus, () => cfg.pixel_size_um.x, () => [...streamQc.streams.values()]);
  const hub: WsHub = new WsHub(bus, previews, {
    history: () => history.snapshot(),
    token: cfg.server.token, allowedOrigins: cfg.server.allowed_origins, defaultFps: cfg.preview.fps,
    defaultFormat: cfg.preview.format, maxFps: cfg.preview.fps * 4,
    hello: () => {
      const h = pipeline.header;
      const channels = Array.from({ length: h?.channels ?? cfg.channels.length }, (_, c) => cfg.channels[c]?.name ?? `ch${c}`);
      return {
        version: VERSION, camera: cfg.camera.name,
        streams: streamList(channels, h?.views ?? 1, cfg.camera.name),
        channel_colors: Object.fromEntries(cfg.channels.map((c) => [c.name, c.color])),
        saturation_level: cfg.camera.saturation_level, offset: cfg.camera.offset, bit_depth: h?.bitDepth ?? cfg.camera.bit_depth,
        thresholds: cfg.qc.thresholds, pixel_size_um: cfg.pixel_size_um, focus_measures: cfg.qc.focus,
        geometry: h ? { width: h.width, height: h.height, z_planes: h.zPlanes } : null,
        metadata: currentMetadata(), alerts: [...alerts.active.values()].map((a) => ({ name: a.name, stream: a.stream ? `${a.stream.channel}/${a.stream.view}` : null, active: true, message: a.message, value: a.value })),
        token_required: cfg.server.token !== '',
      };
    },
    status: (): Record<string, unknown> => {
      const c = pipeline.counters;
      return {
        acquisition: pipeline.status().acquisition, frames_received: c.framesReceived, frames_overrun: c.framesOverrun,
        frames_gap: c.framesGap, frames_torn: c.framesTorn, qc_sampled: c.qcSampled, frames_unstored: c.framesUnstored, bytes_received: c.bytesReceived, bytes_written: c.bytesWritten,
        compression_ratio: c.bytesWritten > 0 ? c.bytesRawStored / c.bytesWritten : 0,
        disk_free_bytes: cfg.storage.enabled ? diskFree(cfg.storage.out) : null, ring_fill_ratio: pipeline.ringFill,
        storage_error: pipeline.storingDisabledReason, preview_clients: hub.count, attached: pipeline.status().attached,
        streams: Object.fromEntries([...streamQc.streams.values()].map((st) => [`${st.stream.channel}/${st.stream.view}`, { fps: st.timing.get().fps, jitter_s: st.timing.get().jitterSeconds, intensity_relative: st.intensityRelative, best_focus_z: st.lastStack?.bestFocusZ ?? null }])),
      };
    },
  });
  const currentMetadata = (): Record<string, unknown> => {
    const keys = Object.keys(cfg.metadata);
    const all = { ...cfg.metadata, ...pipeline.metadataPatch };
    return Object.fromEntries(keys.map((k) => [k, (all as Record<string, unknown>)[k]]));
  };
  routes.push(
    { method: 'GET', path: '/api/metadata', handle: async () => ({ status: 200, body: currentMetadata() }) },
    {
      method: 'POST', path: '/api/metadata', protected: true, handle: async (_req, body) => {
        const r = validateMetadata(body, Object.keys(cfg.metadata));
        if (typeof r === 'string') return { status: 400, body: { error: r } };
        pipeline.updateMetadata(r);
        bus.emit('log', { level: 'info', msg: 'acquisition metadata updated', fields: r });
        hub.broadcast({ type: 'metadata', metadata: currentMetadata() });
        return { status: 200, body: currentMetadata() };
      },
    },
    {
      method: 'POST', path: '/api/sim', protected: true, handle: async (_req, body) => {
        if (!sim || sim.exitCode !== null || !sim.stdin) return { status: 409, body: { error: 'the built-in simulator is not running (source is not "sim")' } };
        if (typeof body !== 'object' || body === null || Array.isArray(body)) return { status: 400, body: { error: 'body must be a JSON object of sim faults' } };
        sim.stdin.write(`${JSON.stringify(body)}\n`);
        return { status: 200, body: { ok: true } };
      },
    },
    { method: 'POST', path: '/api/reload', protected: true, handle: async () => {
      const r = reload();
      return { status: r.ok ? 200 : 400, body: r };
    } },
    { method: 'GET', path: '/api/config', handle: async () => ({ status: 200, body: { ...cfg, server: { ...cfg.server, token: cfg.server.token ? '***' : '' } } }) },
  );
  const server = await startHttpServer({
    host: cfg.server.host, port: cfg.server.port, webDir: path.join(PACKAGE_ROOT, 'web'), vendor: vendorFiles(), token: cfg.server.token, routes,
    onUpgrade: (req, socket, head) => hub.handleUpgrade(req, socket, head),
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.server.port;
  bus.emit('log', { level: 'info', msg: `listening on http://${cfg.server.host}:${port}/ (page), /metrics, /healthz, /readyz` });

  let sim: ChildProcess | null = null;
  if (simMode) {
    sim = startSimulatorProcess(cfg, ringPath);
    sim.on('exit', (code, sig) => {
      if (!stopped) bus.emit('log', { level: code === 0 ? 'info' : 'error', msg: `simulator exited (${sig ?? code})` });
    });
  }
  // One sidecar per ring, refused clearly before anything else starts listening.
  let unlock: () => void;
  try {
    unlock = lockRing(ringPath);
  } catch (e) {
    await new Promise<void>((r) => server.close(() => r()));
    sim?.kill('SIGTERM');
    await workers.close();
    throw e;
  }
  const attach = async () => {
    // Validated here; the ingest thread opens it again (and refuses it if it changed meanwhile).
    const reader = await waitForRing(ringPath, cfg.ring_wait_seconds, bus, () => stopped);
    if (!reader) return;
    // The start position is taken now: frames published while the thread starts are still read.
    const header = reader.header;
    let position;
    try {
      position = startPosition(reader);
    } finally {
      reader.close();
    }
    if (!stopped) pipeline.attach(header, position);
  };
  let attaching = attach();
  attaching.catch((e: unknown) => bus.emit('log', { level: 'error', msg: (e as Error).message }));
  // After a ring error (a producer that crashed and recreated its ring): wait for a valid ring again.
  bus.on('ring-detached', () => {
    if (stopped) return;
    bus.emit('log', { level: 'info', msg: `waiting for a valid ring at ${ringPath} to attach again` });
    attaching = attach();
    attaching.catch((e: unknown) => bus.emit('log', { level: 'error', msg: (e as Error).message }));
  });

  const app: App = {
    bus, alerts, streamQc, hub, pipeline, server, port, sim, reload,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (sim && sim.exitCode === null && sim.signalCode === null) {
        const exited = new Promise((r) => sim?.once('exit', r));
        // SIGTERM only: the simulator reads a closed stdin without a signal as "the sidecar died".
        sim.kill('SIGTERM');
        await exited;
      }
      await attaching.catch(() => undefined);
      await pipeline.stop();
      await workers.close();
      alerts.stop();
      hub.close();
      unlock();
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
    },
  };
  return app;
}

/** uPlot (MIT), the page's time-series plots, served from its npm package (no build step, no CDN). */
function vendorFiles(): Record<string, string> {
  const dir = path.dirname(createRequire(import.meta.url).resolve('uplot'));
  return { '/vendor/uPlot.iife.min.js': path.join(dir, 'uPlot.iife.min.js'), '/vendor/uPlot.min.css': path.join(dir, 'uPlot.min.css') };
}
