/**
 * The effective configuration: built-in defaults (which run the simulator), overlaid by a JSON
 * config file, overlaid by CLI flags. Validation is derived from the defaults' shapes, so every key
 * has a type, unknown keys are refused by name, and enumerated values list what is allowed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CODEC_IDS } from '../../workers/codecs/codec-ids.js';

export interface SimConfig {
  width: number;
  height: number;
  z_planes: number;
  channels: number;
  timepoints: number;
  fps: number;
  slots: number;
  bit_depth: number;
  seed: number;
  blobs: number;
  /** e.g. {"defocus_from_t": 5, "drift_px_per_t": [0.3, -0.2], "saturate_from_t": 3, "gap_every": 50, "bleach_per_t": 0.01} */
  faults: Record<string, number | number[]>;
}

export interface Config {
  source: string;
  ring_wait_seconds: number;
  sim: SimConfig;
  camera: { name: string; bit_depth: number; saturation_level: number; offset: number; gain_e_per_adu: number; read_noise_adu: number };
  channels: { name: string; color: string }[];
  pixel_size_um: { x: number; y: number; z: number };
  time_step_s: number;
  metadata: { microscope: string; objective: string; user: string; project: string; sample: string; notes: string };
  qc: {
    checksum: boolean;
    focus: string[];
    dcts_psf_px: number;
    roi: number[];
    focus_bin: number;
    drift_reference: string;
    drift_planes: string;
    drift_bin: number;
    drift_window: number;
    drift_upsample: number;
    drift_min_confidence: number;
    /** A stack or drift plane whose mean signal is this many times above (or below 1/x of) its baseline is not judged. */
    intensity_step_factor: number;
    thresholds: {
      saturated_ratio: number;
      focus_drop_ratio: number;
      drift_um: number;
      ring_fill_ratio: number;
      disk_free_bytes: number;
      disk_full_in_s: number;
    };
  };
  storage: {
    enabled: boolean;
    out: string;
    name: string;
    codec: string;
    clevel: number;
    blocksize: number;
    chunk: number[];
    shard: number[];
    sharding: boolean;
    checksum: boolean;
    overwrite: boolean;
    min_free_bytes: number;
    /** Extra resolution levels (the live pyramid): a count, or 'auto' = until a level fits one chunk in y and x. */
    levels: number | 'auto';
    /** How a level is made from the one above: mean (round half to even), max, decimate. */
    downsample: string;
    /** auto: shards through O_DIRECT where the file system allows it (else buffered); off: always buffered. */
    direct_io: string;
  };
  server: {
    host: string;
    port: number;
    token: string;
    /** Origins (besides the page's own) whose pages may write: `https://lims.example.org`. */
    allowed_origins: string[];
    /** Host names (besides localhost, this machine's name and IP literals) the server answers to. */
    allowed_hosts: string[];
    /** Listen beyond loopback without a token (anyone on the network can change the run). */
    insecure_no_token: boolean;
    /** Viewers (WebSocket clients) at once. */
    max_clients: number;
  };
  preview: { max_size: number; fps: number; format: string; quality: number; clip_percent: number };
  pipeline: { workers: number; frame_pool_mib: number; block_pool_mib: number; kernels: string };
  offload: {
    /** An rclone remote path (`remote:path`) or an absolute path; empty = no offload. */
    destination: string;
    /** rclone's config file (empty = rclone's own default). */
    rclone_config: string;
    when: string;
    delete_local: boolean;
    /** rclone --bwlimit syntax (e.g. "100M", "08:00,50M 18:00,off"); empty = unlimited. */
    bandwidth: string;
    transfers: number;
    /** rclone's own retries per batch; a failed batch is then retried by spimstream with backoff, forever. */
    retries: number;
    on_complete: string[];
    on_complete_timeout_s: number;
    /** Seconds without a verified file while files wait, before offload_stalled fires. */
    stall_seconds: number;
  };
  log: { json: boolean; level: string };
}

export const DEFAULT_CONFIG: Config = {
  source: 'sim',
  ring_wait_seconds: 0,
  sim: {
    width: 512,
    height: 512,
    z_planes: 16,
    channels: 2,
    timepoints: 0,
    fps: 40,
    slots: 64,
    bit_depth: 16,
    seed: 1,
    blobs: 400,
    faults: {},
  },
  camera: { name: 'cam0', bit_depth: 16, saturation_level: 65535, offset: 100, gain_e_per_adu: 0.46, read_noise_adu: 1.6 },
  channels: [
    { name: 'GFP', color: '00FF00' },
    { name: 'mCherry', color: 'FF00FF' },
  ],
  pixel_size_um: { x: 0.406, y: 0.406, z: 1.0 },
  time_step_s: 1,
  metadata: { microscope: '', objective: '', user: '', project: '', sample: '', notes: '' },
  qc: {
    checksum: false,
    focus: ['dcts', 'tenengrad'],
    dcts_psf_px: 3,
    roi: [],
    focus_bin: 0,
    drift_reference: 'first',
    drift_planes: 'center',
    drift_bin: 1,
    drift_window: 256,
    drift_upsample: 20,
    drift_min_confidence: 8,
    intensity_step_factor: 2,
    thresholds: {
      saturated_ratio: 0.001,
      focus_drop_ratio: 0.3,
      drift_um: 2,
      ring_fill_ratio: 0.8,
      disk_free_bytes: 5e9,
      disk_full_in_s: 3600,
    },
  },
  storage: {
    enabled: true,
    out: './data',
    name: '{date}_{time}_acq{acq}',
    codec: 'blosc-zstd',
    clevel: 1,
    blocksize: 0,
    chunk: [32, 256, 256],
    shard: [128, 0, 0],
    sharding: true,
    checksum: true,
    overwrite: false,
    min_free_bytes: 2e9,
    levels: 0,
    downsample: 'mean',
    direct_io: 'auto',
  },
  server: { host: '127.0.0.1', port: 8080, token: '', allowed_origins: [], allowed_hosts: [], insecure_no_token: false, max_clients: 16 },
  preview: { max_size: 1024, fps: 5, format: 'jpeg', quality: 80, clip_percent: 0.1 },
  pipeline: { workers: 0, frame_pool_mib: 256, block_pool_mib: 1024, kernels: 'simd' },
  offload: {
    destination: '',
    rclone_config: '',
    when: 'shard',
    delete_local: false,
    bandwidth: '',
    transfers: 4,
    retries: 3,
    on_complete: [],
    on_complete_timeout_s: 600,
    stall_seconds: 120,
  },
  log: { json: false, level: 'info' },
};

export const ENUMS: Record<string, readonly string[]> = {
  'qc.drift_reference': ['first', 'previous'],
  'qc.drift_planes': ['center', 'all'],
  'storage.codec': CODEC_IDS,
  'preview.format': ['jpeg', 'webp', 'raw'],
  'log.level': ['debug', 'info', 'warn', 'error'],
  'offload.when': ['shard', 'acquisition'],
  'storage.downsample': ['mean', 'max', 'decimate'],
  'storage.direct_io': ['auto', 'off'],
  'pipeline.kernels': ['simd', 'js'],
};
const FOCUS_MEASURES = ['dcts', 'tenengrad', 'laplacian_variance', 'brenner'] as const;

/** Free-form maps whose keys are not checked against the defaults. */
const OPEN_MAPS = new Set(['sim.faults']);

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

/** The allowed range of every numeric key (a test checks that none is missing). */
interface Range {
  int?: boolean;
  min?: number;
  max?: number;
  above?: number;
  below?: number;
}
const I = (min: number, max = Number.MAX_SAFE_INTEGER): Range => ({ int: true, min, max });
export const RANGES: Record<string, Range> = {
  ring_wait_seconds: { min: 0 },
  'sim.width': I(1, 65536),
  'sim.height': I(1, 65536),
  'sim.z_planes': I(1, 100000),
  'sim.channels': I(1, 64),
  'sim.timepoints': I(0),
  'sim.fps': { above: 0, max: 10000 },
  'sim.slots': I(2, 1 << 20),
  'sim.bit_depth': I(8, 16),
  'sim.seed': I(0),
  'sim.blobs': I(0, 1_000_000),
  'camera.bit_depth': I(1, 16),
  'camera.saturation_level': I(1, 65535),
  'camera.offset': { min: 0, max: 65535 },
  'camera.gain_e_per_adu': { above: 0, max: 1000 },
  'camera.read_noise_adu': { min: 0, max: 10000 },
  'pixel_size_um.x': { above: 0, max: 1e6 },
  'pixel_size_um.y': { above: 0, max: 1e6 },
  'pixel_size_um.z': { above: 0, max: 1e6 },
  time_step_s: { above: 0 },
  'qc.dcts_psf_px': I(1, 64),
  'qc.focus_bin': I(0, 64),
  'qc.drift_bin': I(1, 64),
  'qc.drift_window': I(16, 4096),
  'qc.drift_upsample': I(1, 1000),
  'qc.drift_min_confidence': { min: 0, max: 1e6 },
  'qc.intensity_step_factor': { above: 1, max: 1000 },
  'qc.thresholds.saturated_ratio': { min: 0, max: 1 },
  'qc.thresholds.focus_drop_ratio': { above: 0, below: 1 },
  'qc.thresholds.drift_um': { above: 0 },
  'qc.thresholds.ring_fill_ratio': { above: 0, max: 1 },
  'qc.thresholds.disk_free_bytes': { min: 0 },
  'qc.thresholds.disk_full_in_s': { above: 0 },
  'storage.clevel': I(0, 22),
  'storage.blocksize': I(0, 1 << 30),
  'storage.min_free_bytes': { min: 0 },
  'storage.levels': I(0, 16),
  'server.port': I(0, 65535),
  'server.max_clients': I(1, 10000),
  'preview.max_size': I(16, 8192),
  'preview.fps': { above: 0, max: 60 },
  'preview.quality': I(1, 100),
  'preview.clip_percent': { min: 0, below: 50 },
  'pipeline.workers': I(0, 256),
  'pipeline.frame_pool_mib': I(1, 1 << 20),
  'pipeline.block_pool_mib': I(1, 1 << 20),
  'offload.transfers': I(1, 64),
  'offload.retries': I(0, 100),
  'offload.on_complete_timeout_s': { above: 0, max: 86400 },
  'offload.stall_seconds': { above: 0 },
};

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
