/**
 * `spimstream run`: composes the sidecar. Starts (or waits for) the ring producer, the worker pool,
 * the pipeline, the HTTP/WebSocket server and the exporters, and owns the life cycle: SIGINT/SIGTERM
 * stop intake, drain the workers, flush every buffered chunk and shard, finalize metadata, exit 0.
 */
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import type http from 'node:http';
import { EventBus } from './pipeline/events.js';
import { Pipeline } from './pipeline/pipeline.js';
import { WorkerPool } from './pipeline/worker-pool.js';
import { removeSimRing, removeStaleSimRings, simRingPath, startSimulatorProcess } from './ingest/sim-process.js';
import { RingAttacher } from './pipeline/ring-attacher.js';
import { lockRing } from './ingest/ring-lock.js';
import { pruneSeen } from './ingest/ring-seen.js';
import { diskFree } from './zarr/disk.js';
import { attachLogger } from './log.js';
import { StreamQc } from './qc/stream-qc.js';
import { AlertEngine } from './qc/alerts.js';
import { QcHistory } from './server/qc-history.js';
import { ManifestWriter } from './offload/manifest.js';
import { Offloader } from './offload/offloader.js';
import { Metrics } from './server/metrics.js';
import { startHttpServer } from './server/http-server.js';
import { apiRoutes } from './server/api-routes.js';
import { RefusalLog, RequestGuard } from './server/request-guard.js';
import { publicConfig, Secrets } from './config/secrets.js';
import { helloMessage, statusMessage, type PageSources } from './server/page-state.js';
import { PreviewService } from './server/preview-service.js';
import { WsHub } from './server/ws-hub.js';
import { PACKAGE_ROOT, VERSION } from './package-info.js';
import { simdUnavailableReason } from '../workers/kernels/tiles-simd.js';
import { changedKeys, isLoopbackHost, type Config } from './config/config.js';

export interface RunOptions {
  overwrite: boolean;
  append: boolean;
  /** Producer facts nobody configured for an external ring (config.ts assumedKeys). */
  assumed?: string[];
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

export async function startApp(cfg: Config, opts: RunOptions, reloadConfig?: () => Config): Promise<App> {
  const bus = new EventBus();
  // Every output that can carry a configured secret goes through this one mask.
  const secrets = new Secrets(cfg);
  const redact = (text: string): string => secrets.redact(text);
  attachLogger(bus, cfg.log.json, cfg.log.level as 'info', process.stderr, redact);
  if (opts.assumed?.length) {
    bus.emit('log', {
      level: 'warn',
      msg: `no config for this producer's ${opts.assumed.join(', ')}: the store names channels ch0, ch1…, claims no physical unit for what is unknown and lists it under "unknown"; set them in --config FILE (e.g. {"channels": [{"name": "DAPI", "color": "0000FF"}], "pixel_size_um": {"x": 0.1, "y": 0.1, "z": 0.5}, "time_step_s": 10})`,
    });
  }
  if (!isLoopbackHost(cfg.server.host) && !cfg.server.token)
    bus.emit('log', {
      level: 'warn',
      msg: `listening on ${cfg.server.host} without a token (server.insecure_no_token): anyone on the network can view the run, change its metadata and faults`,
    });
  const simMode = cfg.source === 'sim';
  const ringPath = simMode ? simRingPath() : cfg.source.slice(4);
  if (simMode) {
    const stale = removeStaleSimRings();
    if (stale.length > 0)
      bus.emit('log', {
        level: 'warn',
        msg: `removed ${stale.length} simulator ring(s) left in /dev/shm by a sidecar that was killed: ${stale.join(', ')}`,
      });
  }
  const workers = new WorkerPool(cfg.pipeline.workers);
  // The preview side first: the pipeline is built with its port and offers frames through it.
  const previews = new PreviewService(cfg, bus, workers);
  const pipeline = new Pipeline(cfg, bus, workers, ringPath, opts, previews);
  if (pipeline.codec.fallbackReason) bus.emit('log', { level: 'warn', msg: `codec: ${pipeline.codec.fallbackReason}` });
  if (cfg.pipeline.kernels === 'simd' && simdUnavailableReason())
    bus.emit('log', {
      level: 'warn',
      msg: `kernels: the WebAssembly SIMD kernel is not available (${simdUnavailableReason()}); the JS kernels run (npm run build assembles it)`,
    });
  bus.emit('log', {
    level: 'info',
    msg: 'codec',
    fields: {
      requested: pipeline.codec.requested,
      effective: pipeline.codec.effective,
      implementation: pipeline.codec.implementation,
      clevel: pipeline.codec.clevel,
    },
  });
  const streamQc = new StreamQc(
    bus,
    () => pipeline.header?.zPlanes ?? 1,
    () => cfg.qc.focus[0] ?? 'dcts',
    () => 1 - cfg.qc.thresholds.focus_drop_ratio,
    () => ({ saturatedRatio: cfg.qc.thresholds.saturated_ratio, intensityStep: cfg.qc.intensity_step_factor }),
  );
  // After StreamQc: its last stacks are summarized on acquisition-finished, before the manifest is written.
  new ManifestWriter(bus, {
    version: VERSION,
    ring: () => (pipeline.header ? pipeline.ringPath : null),
    pixelSizeUm: () => cfg.pixel_size_um.x,
    config: () => publicConfig(cfg, secrets),
    redact,
  });
  // After the manifest writer: it queues a store's manifest when the manifest is on disk.
  const offloader = cfg.offload.destination ? new Offloader(cfg, bus) : null;
  const alerts = new AlertEngine(bus, cfg, {
    ringFill: () => pipeline.ringFill,
    diskFree: () => (cfg.storage.enabled ? diskFree(cfg.storage.out) : null),
  });
  const metrics = new Metrics(
    bus,
    cfg.camera.name,
    { version: VERSION, codec: pipeline.codec.effective, codec_implementation: pipeline.codec.implementation },
    {
      ringFillRatio: () => pipeline.ringFill,
      diskFreeBytes: () => (cfg.storage.enabled ? diskFree(cfg.storage.out) : null),
      diskFullInSeconds: () => (cfg.storage.enabled ? alerts.disk.fullInSeconds(cfg.storage.min_free_bytes) : null),
      previewClients: () => hub.count,
      framePoolInUseRatio: () => (pipeline.framePool ? pipeline.framePool.inUse / pipeline.framePool.capacity : 0),
      ingestMaxPollGapMs: () => pipeline.takeMaxPollGapMs(),
      blockPoolInUseRatio: () => pipeline.blockPoolInUseRatio(),
      streams: () => streamQc.streams.values(),
      focusMeasure: () => cfg.qc.focus[0] ?? 'dcts',
      pixelSizeUm: () => cfg.pixel_size_um.x,
      offloadBacklog: () => offloader?.backlog() ?? null,
    },
  );
  let stopped = false;
  /** Reloads thresholds (the only settings that change without a restart); frames keep flowing. */
  const reload = (): { ok: boolean; message: string; thresholds?: Config['qc']['thresholds'] } => {
    if (!reloadConfig) return { ok: false, message: 'no config file to reload from' };
    try {
      const next = reloadConfig();
      const changed = changedKeys(cfg, next);
      const live = changed.filter((k) => k.startsWith('qc.thresholds.'));
      const restart = changed.filter((k) => !k.startsWith('qc.thresholds.'));
      cfg.qc.thresholds = next.qc.thresholds;
      alerts.reload(cfg);
      const parts = [live.length > 0 ? `thresholds reloaded (${live.join(', ')})` : 'no threshold changed'];
      if (restart.length > 0) parts.push(`changed but needs a restart to take effect: ${restart.join(', ')}`);
      const message = parts.join('; ');
      bus.emit('log', { level: restart.length > 0 ? 'warn' : 'info', msg: `reload: ${message}`, fields: { ...cfg.qc.thresholds } });
      return { ok: true, message, thresholds: cfg.qc.thresholds };
    } catch (e) {
      bus.emit('log', { level: 'error', msg: `reload refused: ${(e as Error).message}` });
      return { ok: false, message: (e as Error).message };
    }
  };
  const guard = new RequestGuard({
    listenHost: cfg.server.host,
    allowedHosts: cfg.server.allowed_hosts,
    allowedOrigins: cfg.server.allowed_origins,
  });
  const refusals = new RefusalLog((msg) => bus.emit('log', { level: 'warn', msg }));
  const history = new QcHistory(
    bus,
    () => cfg.pixel_size_um.x,
    () => [...streamQc.streams.values()],
  );
  const page: PageSources = {
    cfg,
    pipeline,
    alerts,
    streamQc,
    previewClients: () => hub.count,
    metadata: () => currentMetadata(),
    offload: () => offloader?.status() ?? null,
    diskFullIn: () => alerts.disk.fullInSeconds(cfg.storage.min_free_bytes),
  };
  const hub: WsHub = new WsHub(bus, previews, {
    history: () => history.snapshot(),
    token: cfg.server.token,
    guard,
    refusals,
    redact,
    maxClients: cfg.server.max_clients,
    defaultFps: cfg.preview.fps,
    defaultFormat: cfg.preview.format,
    maxFps: cfg.preview.fps * 4,
    hello: () => helloMessage(page),
    status: () => statusMessage(page),
  });
  const currentMetadata = (): Record<string, unknown> => {
    const keys = Object.keys(cfg.metadata);
    const all = { ...cfg.metadata, ...pipeline.metadataPatch };
    return Object.fromEntries(keys.map((k) => [k, (all as Record<string, unknown>)[k]]));
  };
  let sim: ChildProcess | null = null;
  const routes = apiRoutes({
    cfg,
    bus,
    pipeline,
    metrics,
    reload,
    metadata: currentMetadata,
    publicConfig: () => publicConfig(cfg, secrets),
    metadataChanged: () => hub.broadcast({ type: 'metadata', metadata: currentMetadata() }),
    simRunning: () => sim !== null && sim.exitCode === null && sim.stdin !== null,
    simCommand: (line) => sim?.stdin?.write(line),
    offload: page.offload,
    diskFullIn: page.diskFullIn,
  });
  const server = await startHttpServer({
    host: cfg.server.host,
    port: cfg.server.port,
    webDir: path.join(PACKAGE_ROOT, 'web'),
    vendor: vendorFiles(),
    token: cfg.server.token,
    routes,
    guard,
    refusals,
    redact,
    onUpgrade: (req, socket, head) => hub.handleUpgrade(req, socket, head),
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.server.port;
  bus.emit('log', { level: 'info', msg: `listening on http://${cfg.server.host}:${port}/ (page), /metrics, /healthz, /readyz` });

  if (simMode) {
    sim = startSimulatorProcess(cfg, ringPath);
    sim.on('exit', (code, sig) => {
      if (!stopped) bus.emit('log', { level: code === 0 ? 'info' : 'error', msg: `simulator exited (${sig ?? code})` });
      // Whatever ended it, its ring is this sidecar's to free (it is never reattached).
      if (removeSimRing(ringPath))
        bus.emit('log', { level: 'info', msg: `removed the simulator's ring ${ringPath} (it exited before removing it)` });
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
  const attacher = new RingAttacher(pipeline, bus, cfg.ring_wait_seconds);

  const app: App = {
    bus,
    alerts,
    streamQc,
    hub,
    pipeline,
    server,
    port,
    sim,
    reload,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (sim && sim.exitCode === null && sim.signalCode === null) {
        const exited = new Promise((r) => sim?.once('exit', r));
        // SIGTERM only: the simulator reads a closed stdin without a signal as "the sidecar died".
        sim.kill('SIGTERM');
        await exited;
      }
      await attacher.stop();
      await pipeline.stop();
      await offloader?.stop(30_000);
      await workers.close();
      alerts.stop();
      hub.close();
      unlock();
      pruneSeen(ringPath); // a ring its producer removed leaves no marker behind
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
