/**
 * Builds what people and scrapers talk to: the WebSocket hub, /metrics, the API routes and the
 * HTTP server, all behind the request guard. Reads the processing side; writes into it only
 * through its commands (metadata, rebaseline, simulator faults).
 */
import type http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { publicConfig, type Secrets } from '../config/secrets.js';
import { PACKAGE_ROOT, VERSION } from '../package-info.js';
import type { EventBus } from '../pipeline/events.js';
import { diskFree } from '../zarr/disk.js';
import { apiRoutes } from '../server/api-routes.js';
import { startHttpServer } from '../server/http-server.js';
import { Metrics } from '../server/metrics.js';
import { helloMessage, type PageSources, statusMessage } from '../server/page-state.js';
import { QcHistory } from '../server/qc-history.js';
import { RefusalLog, RequestGuard } from '../server/request-guard.js';
import { WsHub } from '../server/ws-hub.js';
import type { Outputs } from './outputs.js';
import type { Processing } from './processing.js';

export interface Front {
  hub: WsHub;
  server: http.Server;
  port: number;
}

export interface FrontHooks {
  reload: () => { ok: boolean; message: string };
  /** The simulator's stdin, while one runs (faults and acquisitions on command). */
  simCommand: () => ((line: string) => void) | null;
}

export async function buildFront(
  cfg: Config,
  bus: EventBus,
  secrets: Secrets,
  p: Processing,
  o: Outputs,
  hooks: FrontHooks,
): Promise<Front> {
  const { pipeline, streamQc, previews } = p;
  const { alerts, offloader } = o;
  const redact = (text: string): string => secrets.redact(text);
  const guard = new RequestGuard({
    listenHost: cfg.server.host,
    allowedHosts: cfg.server.allowed_hosts,
    allowedOrigins: cfg.server.allowed_origins,
  });
  const refusals = new RefusalLog((msg) => bus.emit('log', { level: 'warn', msg }));
  const metadata = (): Record<string, unknown> => {
    const all: Record<string, unknown> = { ...cfg.metadata, ...pipeline.metadataPatch };
    return Object.fromEntries(Object.keys(cfg.metadata).map((k) => [k, all[k]]));
  };
  const page: PageSources = {
    cfg,
    pipeline,
    alerts,
    streamQc,
    metadata,
    offload: () => offloader?.status() ?? null,
    diskFullIn: () => alerts.disk.fullInSeconds(cfg.storage.min_free_bytes),
  };
  const history = new QcHistory(
    bus,
    () => cfg.pixel_size_um.x,
    () => [...streamQc.streams.values()],
  );
  const hub = new WsHub(bus, previews, {
    history: () => history.snapshot(),
    token: cfg.server.token,
    guard,
    refusals,
    redact,
    maxClients: cfg.server.max_clients,
    defaultFps: cfg.preview.fps,
    defaultFormat: cfg.preview.format,
    volumeBytesPerSecond: cfg.preview.volume_bytes_per_second,
    maxFps: cfg.preview.fps * 4,
    hello: () => helloMessage(page),
    status: (viewers) => statusMessage(page, viewers),
  });
  const metrics = new Metrics(
    bus,
    cfg.camera.name,
    { version: VERSION, codec: pipeline.codec.effective, codec_implementation: pipeline.codec.implementation },
    {
      ringFillRatio: () => pipeline.ringFill,
      storageEnabled: () => cfg.storage.enabled,
      diskFreeBytes: () => (cfg.storage.enabled ? diskFree(cfg.storage.out) : null),
      diskFullInSeconds: () => (cfg.storage.enabled ? alerts.disk.fullInSeconds(cfg.storage.min_free_bytes) : null),
      previewClients: () => hub.count,
      viewerMessagesSkipped: () => ({ backlog: hub.skippedTotal, 'volume-budget': hub.volumesOverBudget }),
      framePoolInUseRatio: () => (pipeline.framePool ? pipeline.framePool.inUse / pipeline.framePool.capacity : 0),
      ingestMaxPollGapMs: () => pipeline.takeMaxPollGapMs(),
      blockPoolInUseRatio: () => pipeline.blockPoolInUseRatio(),
      streams: () => streamQc.streams.values(),
      focusMeasure: () => cfg.qc.focus[0] ?? 'dcts',
      pixelSizeUm: () => cfg.pixel_size_um.x,
      offloadBacklog: () => offloader?.backlog() ?? null,
    },
  );
  const routes = apiRoutes({
    cfg,
    bus,
    pipeline,
    metrics,
    reload: hooks.reload,
    metadata,
    publicConfig: () => publicConfig(cfg, secrets),
    metadataChanged: () => hub.broadcast({ type: 'metadata', metadata: metadata() }),
    simRunning: () => hooks.simCommand() !== null,
    simCommand: (line) => hooks.simCommand()?.(line),
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
  return { hub, server, port };
}

/**
 * uPlot (MIT), the page's time-series plots, served from its npm package (no build step, no CDN);
 * and the preview decoder the server's tests use, compiled, so the page decodes with the same code.
 */
function vendorFiles(): Record<string, string> {
  const dir = path.dirname(createRequire(import.meta.url).resolve('uplot'));
  return {
    '/vendor/uPlot.iife.min.js': path.join(dir, 'uPlot.iife.min.js'),
    '/vendor/uPlot.min.css': path.join(dir, 'uPlot.min.css'),
    '/lib/preview-protocol.js': path.join(PACKAGE_ROOT, 'dist', 'src', 'server', 'preview-protocol.js'),
    '/lib/volume-protocol.js': path.join(PACKAGE_ROOT, 'dist', 'src', 'server', 'volume-protocol.js'),
  };
}
