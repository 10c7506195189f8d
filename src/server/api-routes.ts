/**
 * The HTTP routes besides the page: /metrics, /healthz, /readyz, and the small JSON API the page
 * uses (status, sample metadata, simulator faults, threshold reload, effective config). Write
 * routes are `protected` (token, same-origin) by the HTTP server.
 */
import type { OffloadStatus } from '../offload/offload-status.js';
import type { Config } from '../config/config.js';
import type { EventBus } from '../pipeline/events.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Route } from './http-server.js';
import { runbookHtml } from '../observability/runbook.js';
import type { Metrics } from './metrics.js';
import { VERSION } from '../package-info.js';
import { faultProblem } from '../ingest/simulator.js';

export interface ApiDeps {
  cfg: Config;
  bus: EventBus;
  pipeline: Pipeline;
  metrics: Metrics;
  metadata: () => Record<string, unknown>;
  /** Tells every page the metadata changed. */
  metadataChanged: () => void;
  /** The built-in simulator is running (source "sim") and takes fault lines on its stdin. */
  simRunning: () => boolean;
  simCommand: (line: string) => void;
  /** The offload's state (null: offload off) and the disk-full forecast, as the page shows them. */
  offload: () => OffloadStatus | null;
  diskFullIn: () => number;
  reload: () => { ok: boolean; message: string };
  /** The effective configuration with every secret masked (config/secrets.ts). */
  publicConfig: () => Config;
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

export function apiRoutes(d: ApiDeps): Route[] {
  const { cfg, pipeline } = d;
  return [
    { method: 'GET', path: '/metrics', handle: async () => ({ status: 200, type: d.metrics.contentType, body: await d.metrics.text() }) },
    { method: 'GET', path: '/healthz', handle: async () => ({ status: 200, body: { status: 'ok', version: VERSION } }) },
    // What to do for each alert: the target of the rules' runbook_url (no secret, no state).
    { method: 'GET', path: '/runbook', handle: async () => ({ status: 200, type: 'text/html; charset=utf-8', body: runbookHtml() }) },
    {
      method: 'GET',
      path: '/readyz',
      handle: async () => {
        const s = pipeline.status();
        const ok = s.attached && s.storeWritable;
        return {
          status: ok ? 200 : 503,
          body: {
            ready: ok,
            ring_attached: s.attached,
            store_writable: s.storeWritable,
            ring: s.ringPath,
            storage_error: pipeline.storingDisabledReason,
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/api/status',
      handle: async () => ({
        status: 200,
        body: {
          ...pipeline.status(),
          counters: { ...pipeline.counters },
          codec: pipeline.codec,
          offload: d.offload(),
          disk_full_in_s: Number.isFinite(d.diskFullIn()) ? d.diskFullIn() : null,
        },
      }),
    },
    { method: 'GET', path: '/api/metadata', handle: async () => ({ status: 200, body: d.metadata() }) },
    {
      method: 'POST',
      path: '/api/metadata',
      protected: true,
      handle: async (_req, body) => {
        const r = validateMetadata(body, Object.keys(cfg.metadata));
        if (typeof r === 'string') return { status: 400, body: { error: r } };
        await pipeline.updateMetadata(r); // durable in every open store before the page says saved
        d.bus.emit('log', { level: 'info', msg: 'acquisition metadata updated', fields: r });
        d.metadataChanged();
        return { status: 200, body: d.metadata() };
      },
    },
    {
      method: 'POST',
      path: '/api/sim',
      protected: true,
      handle: async (_req, body) => {
        if (!d.simRunning()) return { status: 409, body: { error: 'the built-in simulator is not running (source is not "sim")' } };
        const bad = faultProblem(body);
        if (bad) return { status: 400, body: { error: bad } };
        d.simCommand(`${JSON.stringify(body)}\n`);
        return { status: 200, body: { ok: true } };
      },
    },
    {
      method: 'POST',
      path: '/api/rebaseline',
      protected: true,
      handle: async () => {
        pipeline.rebaseline('accepted on the page or by POST /api/rebaseline');
        d.bus.emit('log', {
          level: 'info',
          msg: 'QC baselines restart from the next stacks (focus, intensity, drift reference): the change was accepted as deliberate',
        });
        return { status: 200, body: { ok: true } };
      },
    },
    {
      method: 'POST',
      path: '/api/reload',
      protected: true,
      handle: async () => {
        const r = d.reload();
        return { status: r.ok ? 200 : 400, body: r };
      },
    },
    { method: 'GET', path: '/api/config', handle: async () => ({ status: 200, body: d.publicConfig() }) },
  ];
}
