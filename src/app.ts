/**
 * `spimstream run`: composes the sidecar from the builders in ./app/ in an order written out
 * below, and owns the life cycle: SIGINT/SIGTERM stop intake, drain the workers, flush every
 * buffered chunk and shard, finalize metadata, exit 0.
 */
import type { ChildProcess } from 'node:child_process';
import type http from 'node:http';
import { type Front, buildFront } from './app/front.js';
import { buildOutputs } from './app/outputs.js';
import { buildProcessing } from './app/processing.js';
import { claimRing, startSimulator, stopSimulator } from './app/producer.js';
import { changedKeys, type Config, isLoopbackHost } from './config/config.js';
import { Secrets } from './config/secrets.js';
import { pruneSeen } from './ingest/ring-seen.js';
import { attachLogger } from './log.js';
import { EventBus } from './pipeline/events.js';
import type { Pipeline } from './pipeline/pipeline.js';
import { RingAttacher } from './pipeline/ring-attacher.js';
import type { AlertEngine } from './qc/alerts.js';
import type { StreamQc } from './qc/stream-qc.js';
import type { WsHub } from './server/ws-hub.js';

export interface RunOptions {
  overwrite: boolean;
  append: boolean;
  /** Producer facts nobody configured for an external ring (config.ts assumedKeys). */
  assumed?: string[];
  /** Where log lines go (default stderr; the tests keep them in a file per test file). */
  logTo?: NodeJS.WritableStream;
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
  attachLogger(bus, cfg.log.json, cfg.log.level as 'info', opts.logTo ?? process.stderr, (text) => secrets.redact(text));
  startupWarnings(cfg, bus, opts);
  // In this order: the ring (refused if another sidecar holds it), processing, the outputs its
  // events feed, the server that shows them, and only then the producer and the ring's reader.
  const ring = claimRing(cfg, bus);
  const processing = buildProcessing(cfg, bus, ring.ringPath, opts);
  const outputs = buildOutputs(cfg, bus, secrets, processing, opts.assumed ?? []);
  let sim: ChildProcess | null = null;
  let stopped = false;
  const reload = (): { ok: boolean; message: string } => reloadThresholds(cfg, bus, outputs.alerts, reloadConfig);
  let front: Front;
  try {
    front = await buildFront(cfg, bus, secrets, processing, outputs, {
      reload,
      simCommand: () => (sim !== null && sim.exitCode === null && sim.stdin !== null ? (line) => sim?.stdin?.write(line) : null),
    });
  } catch (e) {
    await processing.workers.close();
    ring.unlock();
    throw e;
  }
  if (ring.simMode) sim = startSimulator(cfg, bus, ring.ringPath, () => stopped);
  const attacher = new RingAttacher(processing.pipeline, bus, cfg.ring_wait_seconds);
  const { pipeline, streamQc, workers } = processing;
  const { hub, server, port } = front;
  return {
    bus,
    alerts: outputs.alerts,
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
      await stopSimulator(sim);
      await attacher.stop();
      await pipeline.stop();
      await outputs.offloader?.stop(30_000);
      await workers.close();
      outputs.alerts.stop();
      hub.close();
      ring.unlock();
      pruneSeen(ring.ringPath); // a ring its producer removed leaves no marker behind
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function startupWarnings(cfg: Config, bus: EventBus, opts: RunOptions): void {
  if (opts.assumed?.length) {
    bus.emit('log', {
      level: 'warn',
      msg: `no config for this producer's ${opts.assumed.join(', ')}: the store names channels ch0, ch1…, claims no physical unit for what is unknown and lists it under "unknown"; set them in --config FILE (e.g. {"channels": [{"name": "DAPI", "color": "0000FF"}], "pixel_size_um": {"x": 0.1, "y": 0.1, "z": 0.5}, "time_step_s": 10})`,
    });
  }
  if (!isLoopbackHost(cfg.server.host) && !cfg.server.token) {
    bus.emit('log', {
      level: 'warn',
      msg: `listening on ${cfg.server.host} without a token (server.insecure_no_token): anyone on the network can view the run, change its metadata and faults`,
    });
  }
}

/** Reloads thresholds (the only settings that change without a restart); frames keep flowing. */
function reloadThresholds(cfg: Config, bus: EventBus, alerts: AlertEngine, reloadConfig?: () => Config): { ok: boolean; message: string } {
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
    return { ok: true, message };
  } catch (e) {
    bus.emit('log', { level: 'error', msg: `reload refused: ${(e as Error).message}` });
    return { ok: false, message: (e as Error).message };
  }
}
