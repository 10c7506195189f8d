/**
 * The effective configuration: built-in defaults (which run the simulator), overlaid by a JSON
 * config file, overlaid by CLI flags. Validation is derived from the defaults' shapes, so every key
 * has a type, unknown keys are refused by name, and enumerated values list what is allowed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Config, DEFAULT_CONFIG, ENUMS, FOCUS_MEASURES, OPEN_MAPS, RANGES, type Range } from './schema.js';

export { type Config, DEFAULT_CONFIG, ENUMS, RANGES, type SimConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'ConfigError';
  }
}

function kind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v;
}

/** Overlays `over` on `base`; every unknown key or wrong type is added to errs (the base value is kept). */
function merge(base: unknown, over: unknown, path: string, errs: string[]): unknown {
  // storage.levels takes a count or the word 'auto' (checked in problems()).
  if (path === 'storage.levels' && over === 'auto') return over;
  const want = kind(base);
  const got = kind(over);
  if (want !== got) {
    errs.push(`config key "${path}": expected ${want}, got ${got} (${JSON.stringify(over)})`);
    return base;
  }
  if (want === 'object' && !OPEN_MAPS.has(path)) {
    const b = base as Record<string, unknown>;
    const o = over as Record<string, unknown>;
    const out: Record<string, unknown> = { ...b };
    for (const k of Object.keys(o)) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in b)) {
        errs.push(`config key "${p}" is unknown; allowed keys here: ${Object.keys(b).join(', ')}`);
        continue;
      }
      out[k] = merge(b[k], o[k], p, errs);
    }
    return out;
  }
  if (want === 'array' && Array.isArray(base) && base.length > 0) {
    const proto = base[0];
    for (const [i, item] of (over as unknown[]).entries()) merge(proto, item, `${path}[${i}]`, errs);
  }
  return over;
}

function describeRange(r: Range): string {
  const parts: string[] = [];
  if (r.above !== undefined) parts.push(`> ${r.above}`);
  if (r.min !== undefined && r.min > Number.MIN_SAFE_INTEGER) parts.push(`>= ${r.min}`);
  if (r.below !== undefined) parts.push(`< ${r.below}`);
  if (r.max !== undefined && r.max < Number.MAX_SAFE_INTEGER) parts.push(`<= ${r.max}`);
  return `${r.int ? 'an integer ' : 'a number '}${parts.join(' and ')}`.trim();
}

function get(obj: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((o, k) => (o === null || typeof o !== 'object' ? undefined : (o as Record<string, unknown>)[k]), obj);
}

/** Every problem of the configuration, one line each (empty = valid). */
export function problems(c: Config): string[] {
  const out: string[] = [];
  const check = (cond: boolean, key: string, msg: string) => {
    if (!cond) out.push(`config key "${key}": ${msg}`);
  };
  for (const [key, allowed] of Object.entries(ENUMS)) {
    const v = get(c, key) as string;
    check(allowed.includes(v), key, `"${v}" is not one of: ${allowed.join(', ')}`);
  }
  check(c.source === 'sim' || /^shm:.+/.test(c.source), 'source', `"${c.source}" must be "sim" or "shm:/dev/shm/NAME"`);
  for (const m of c.qc.focus) {
    check((FOCUS_MEASURES as readonly string[]).includes(m), 'qc.focus', `"${m}" is not one of: ${FOCUS_MEASURES.join(', ')}`);
  }
  check(c.qc.focus.length > 0, 'qc.focus', 'needs at least one measure (the first one drives focus_lost)');
  for (const [key, r] of Object.entries(RANGES)) {
    const v = get(c, key) as number;
    if (key === 'storage.levels' && (v as unknown) === 'auto') continue;
    const ok =
      Number.isFinite(v) &&
      (!r.int || Number.isInteger(v)) &&
      (r.min === undefined || v >= r.min) &&
      (r.max === undefined || v <= r.max) &&
      (r.above === undefined || v > r.above) &&
      (r.below === undefined || v < r.below);
    check(ok, key, `${JSON.stringify(v) ?? String(v)} must be ${describeRange(r)}${key === 'storage.levels' ? ' or "auto"' : ''}`);
  }
  check(
    c.camera.offset < c.camera.saturation_level,
    'camera.offset',
    `${c.camera.offset} must be below camera.saturation_level (${c.camera.saturation_level})`,
  );
  check(
    c.storage.chunk.length === 3 && c.storage.chunk.every((v) => Number.isInteger(v) && v >= 1),
    'storage.chunk',
    `${JSON.stringify(c.storage.chunk)} must be [z, y, x] positive integers`,
  );
  check(
    c.storage.shard.length === 3 && c.storage.shard.every((v) => Number.isInteger(v) && v >= 0),
    'storage.shard',
    `${JSON.stringify(c.storage.shard)} must be [z, y, x] integers (0 = whole axis)`,
  );
  if (
    c.storage.chunk.length === 3 &&
    c.storage.shard.length === 3 &&
    c.storage.shard.some((v, i) => v !== 0 && v % c.storage.chunk[i] !== 0)
  ) {
    out.push(
      `config key "storage.shard": shard ${JSON.stringify(c.storage.shard)} must be a multiple of chunk ${JSON.stringify(c.storage.chunk)} on every axis (or 0 = whole axis)`,
    );
  }
  const lv = c.storage.levels;
  check(
    lv === 0 || c.storage.chunk.length !== 3 || c.storage.chunk[0] % 2 === 0,
    'storage.levels',
    `needs an even storage.chunk z (got ${c.storage.chunk[0]}): a level's plane pairs two consecutive planes of one chunk (chunk z is clamped to the stack, so 2 also suits single-plane streams)`,
  );
  check(c.storage.out.length > 0, 'storage.out', 'must not be empty');
  check(
    isLoopbackHost(c.server.host) || c.server.token !== '' || c.server.insecure_no_token,
    'server.host',
    `"${c.server.host}" is reachable from the network: set server.token (every viewer and write then needs it), or server.insecure_no_token: true to allow anyone on the network to change the run`,
  );
  check(
    c.server.allowed_origins.every((o) => typeof o === 'string' && /^https?:\/\/[^/\s]+$/.test(o)),
    'server.allowed_origins',
    `${JSON.stringify(c.server.allowed_origins)} must be origins such as "https://lims.example.org" (scheme, host, optional port; no path)`,
  );
  check(
    c.server.allowed_hosts.every((h) => typeof h === 'string' && /^[\w.:-]+$/.test(h)),
    'server.allowed_hosts',
    `${JSON.stringify(c.server.allowed_hosts)} must be host names such as "scope3.example.org"`,
  );
  check(c.qc.roi.length === 0 || c.qc.roi.length === 4, 'qc.roi', 'must be [] (centred) or [x, y, width, height]');
  const o = c.offload;
  check(
    o.destination === '' || path.isAbsolute(o.destination) || /^[\w.-]+:/.test(o.destination) || /^:[\w-]+[,:]/.test(o.destination),
    'offload.destination',
    `"${o.destination}" must be an rclone remote path (remote:path, or a connection string :backend,opt=v:path) or an absolute path`,
  );
  check(
    o.on_complete.every((a) => typeof a === 'string'),
    'offload.on_complete',
    'must be an argv array of strings (no shell), e.g. ["sbatch", "process.sh"]',
  );
  check(
    o.bandwidth === '' || /^[\w.:, -]+$/.test(o.bandwidth),
    'offload.bandwidth',
    `"${o.bandwidth}" is not in rclone's --bwlimit syntax (e.g. "100M" or "08:00,50M 18:00,off")`,
  );
  check(
    /^https?:\/\/\S+$/.test(c.alerting.webhook_url),
    'alerting.webhook_url',
    `"${c.alerting.webhook_url}" must be an http(s) URL (Alertmanager's webhook receiver)`,
  );
  check(
    c.alerting.runbook_url === '' || /^https?:\/\/\S+$/.test(c.alerting.runbook_url),
    'alerting.runbook_url',
    `"${c.alerting.runbook_url}" must be empty (the sidecar's /runbook) or an http(s) URL of a copy of it`,
  );
  check(
    !o.delete_local || o.destination !== '',
    'offload.delete_local',
    'needs offload.destination (local files are deleted only after their verified copy exists there)',
  );
  return out;
}

/** Whether a listening address keeps the port on this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return h === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::1';
}

export function validate(c: Config): Config {
  const p = problems(c);
  if (p.length > 0) throw new ConfigError(p.join('\n'));
  return c;
}

export function loadConfigFile(path: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Overlays layers on the defaults (later wins) and validates the result. */
export function buildConfig(...layers: unknown[]): Config {
  let c: unknown = structuredClone(DEFAULT_CONFIG);
  const errs: string[] = [];
  for (const l of layers) if (l !== undefined) c = merge(c, l, '', errs);
  // Every problem at once, one line each: a file with three mistakes is fixed in one round.
  const all = [...errs, ...problems(c as Config)];
  if (all.length > 0) throw new ConfigError(all.join('\n'));
  return c as Config;
}

/** The dotted keys whose values differ between two configurations (arrays compared whole). */
export function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (kind(a) === 'object' && kind(b) === 'object') {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])];
    return keys.flatMap((k) => changedKeys(ao[k], bo[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

/** What describes the sample's optics: the defaults are the simulator's, not a fact about another camera. */
export const PRODUCER_FACTS = ['channels', 'pixel_size_um', 'time_step_s'] as const;

/**
 * The producer facts no layer set, for an external ring (empty for the simulator, whose defaults
 * they are). The store then names channels ch0… and claims no physical unit for what is unknown.
 */
export function assumedKeys(cfg: Config, layers: unknown[]): string[] {
  if (cfg.source === 'sim') return [];
  const set = (k: string) => layers.some((l) => typeof l === 'object' && l !== null && k in l);
  return PRODUCER_FACTS.filter((k) => !set(k));
}

/** Sets a dotted key from a CLI string, keeping the default's type. */
export function overrideFromString(path: string, raw: string): Record<string, unknown> {
  const parts = path.split('.');
  const def = get(DEFAULT_CONFIG, path);
  let value: unknown = raw;
  if (path === 'storage.levels' && raw.trim() === 'auto') value = 'auto';
  else if (typeof def === 'number') {
    value = raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isFinite(value))
      throw new ConfigError(
        `config key "${path}": ${JSON.stringify(raw)} is not a number${path === 'storage.levels' ? ' (nor "auto")' : ''}`,
      );
  } else if (typeof def === 'boolean') value = raw === 'true' || raw === '1';
  else if (Array.isArray(def) || (typeof def === 'object' && def !== null)) {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new ConfigError(`config key "${path}": ${JSON.stringify(raw)} is not valid JSON`);
    }
  }
  const out: Record<string, unknown> = {};
  let o = out;
  for (let i = 0; i < parts.length - 1; i++) o = o[parts[i]] = {} as Record<string, unknown>;
  o[parts[parts.length - 1]] = value;
  return out;
}
