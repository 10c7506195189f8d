/**
 * Secrets and their masking: one place that knows which configured values are secret (the server
 * token, credential parameters of an rclone connection string, the values of `offload.rclone_config`)
 * and one function, `redact`, that every output goes through — HTTP responses, WebSocket messages,
 * the log, the manifest and the QC report. Structural masking (`publicConfig`) shows where a secret
 * was configured; `redact` also catches a secret echoed inside free text (rclone prints the whole
 * connection string in its errors).
 */
import fs from 'node:fs';
import type { Config } from './config.js';

export const MASK = '***';

/**
 * rclone parameters whose values are not credentials and stay readable (which server, which
 * bucket layout). Every other parameter of a connection string or config section is masked:
 * an unknown backend's parameter is treated as a secret.
 */
const VISIBLE_PARAMS = new Set([
  'type',
  'provider',
  'endpoint',
  'region',
  'location_constraint',
  'url',
  'host',
  'port',
  'user',
  'vendor',
  'env_auth',
  'acl',
  'bucket_acl',
  'storage_class',
  'force_path_style',
  'v2_auth',
  'no_check_bucket',
  'disable_checksum',
  'chunk_size',
  'upload_cutoff',
  'upload_concurrency',
  'list_chunk',
  'shell_type',
  'md5sum_command',
  'sha1sum_command',
  'key_file',
  'known_hosts_file',
  'disable_hashcheck',
  'remote',
  'use_insecure_cipher',
  'set_modtime',
  'no_head',
  'server_side_encryption',
]);

/** A value shorter than this is not searched for in free text (it would mask ordinary words). */
const MIN_SECRET_CHARS = 4;
/** Flags and sizes (`no_check_certificate = true`, `chunk_size = 64M`) are settings, never credentials. */
const PLAIN_SETTING = /^(true|false|on|off|yes|no|-?\d+(\.\d+)?[kmgtp]?i?b?)$/i;

interface Param {
  key: string;
  raw: string;
  value: string;
}

/** Splits `k=v,k2='v,2'` into parameters (rclone's quoting: '…' or "…", a doubled quote is one). */
function parseParams(s: string): { params: Param[]; rest: string } {
  const params: Param[] = [];
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf('=', i);
    const stop = s.slice(i).search(/[,:]/);
    if (eq < 0 || (stop >= 0 && i + stop < eq)) break;
    const key = s.slice(i, eq);
    let j = eq + 1;
    let value = '';
    const q = s[j];
    if (q === '"' || q === "'") {
      j++;
      while (j < s.length) {
        if (s[j] === q && s[j + 1] === q) {
          value += q;
          j += 2;
          continue;
        }
        if (s[j] === q) {
          j++;
          break;
        }
        value += s[j++];
      }
    } else {
      while (j < s.length && s[j] !== ',' && s[j] !== ':') value += s[j++];
    }
    params.push({ key, raw: s.slice(eq + 1, j), value });
    i = j;
    if (s[i] === ',') i++;
    else break;
  }
  return { params, rest: s.slice(i) };
}

function isSecretParam(key: string): boolean {
  return !VISIBLE_PARAMS.has(key.trim().toLowerCase().replace(/-/g, '_'));
}

/** The password of a URL's user info (`http://u:p@host`), if any. */
function urlPassword(v: string): string | null {
  const m = /^[a-z][\w+.-]*:\/\/[^/@:]*:([^/@]+)@/i.exec(v);
  return m ? m[1] : null;
}

/** An rclone destination as shown to others: credential parameters masked, user info passwords too. */
export function maskDestination(dest: string): string {
  const m = /^(:?[\w.-]+),(.*)$/s.exec(dest);
  let out = dest;
  if (m) {
    const { params, rest } = parseParams(m[2]);
    const shown = params.map((p) => `${p.key}=${isSecretParam(p.key) ? MASK : p.raw}`);
    out = `${m[1]},${shown.join(',')}${rest}`;
  }
  return out.replace(/(\b[a-z][\w+.-]*:\/\/[^/@:\s']*:)[^/@\s']+@/gi, `$1${MASK}@`);
}

/** The secret values inside a destination string (raw and unquoted forms). */
function destinationSecrets(dest: string): string[] {
  const out: string[] = [];
  const m = /^(:?[\w.-]+),(.*)$/s.exec(dest);
  if (m) {
    for (const p of parseParams(m[2]).params) {
      if (isSecretParam(p.key)) out.push(p.value, p.raw);
      const pw = urlPassword(p.value);
      if (pw) out.push(pw);
    }
  }
  const pw = /:\/\/[^/@:\s']*:([^/@\s']+)@/.exec(dest);
  if (pw) out.push(pw[1]);
  return out;
}

/** The secret values of an rclone config file (every section's non-visible parameters). */
function rcloneConfigSecrets(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([\w.-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    if (isSecretParam(m[1])) out.push(m[2]);
    const pw = urlPassword(m[2]);
    if (pw) out.push(pw);
  }
  return out;
}

/**
 * Knows the configured secrets and masks them. The rclone config file is re-read when it changes
 * (offload picks a mended config up without a restart; so does the masking).
 */
/** How long the secret list is reused: redact runs for every log line and WebSocket message. */
const REFRESH_MS = 1000;

export class Secrets {
  private fileStamp = '';
  private fileValues: string[] = [];
  private cached: string[] = [];
  private cachedAt = -Infinity;

  constructor(private readonly cfg: Pick<Config, 'server' | 'offload'>) {}

  /** Every secret value configured now, longest first (a secret containing another is masked whole). */
  values(): string[] {
    const now = performance.now();
    if (now - this.cachedAt < REFRESH_MS) return this.cached;
    this.cachedAt = now;
    this.cached = this.compute();
    return this.cached;
  }

  private compute(): string[] {
    const file = this.cfg.offload.rclone_config;
    if (file) {
      let stamp = '';
      try {
        const st = fs.statSync(file);
        stamp = `${st.mtimeMs}:${st.size}`;
      } catch {
        /* unreadable: rclone will say so; nothing of it can leak */
      }
      if (stamp !== this.fileStamp) {
        this.fileStamp = stamp;
        try {
          this.fileValues = stamp ? rcloneConfigSecrets(fs.readFileSync(file, 'utf8')) : [];
        } catch {
          this.fileValues = [];
        }
      }
    }
    const all = [this.cfg.server.token, ...destinationSecrets(this.cfg.offload.destination), ...(file ? this.fileValues : [])];
    return [...new Set(all.filter((v) => v.length >= MIN_SECRET_CHARS && !PLAIN_SETTING.test(v)))].sort((a, b) => b.length - a.length);
  }

  /** The one masking function: a string, or any JSON-like value deeply, with every secret replaced. */
  redact<T>(v: T): T {
    const secrets = this.values();
    if (secrets.length === 0) return v;
    return redactWith(v, secrets);
  }
}

function redactWith<T>(v: T, secrets: string[]): T {
  if (typeof v === 'string') {
    let s: string = v;
    for (const x of secrets) if (s.includes(x)) s = s.split(x).join(MASK);
    return s as T;
  }
  if (Array.isArray(v)) return v.map((x: unknown) => redactWith(x, secrets)) as T;
  if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, redactWith(x, secrets)])) as T;
  }
  return v;
}

/** The effective configuration as shown to others (page, /api/config, manifest, `config --print`). */
export function publicConfig(cfg: Config, secrets: Secrets = new Secrets(cfg)): Config {
  const shown: Config = {
    ...cfg,
    server: { ...cfg.server, token: cfg.server.token ? MASK : '' },
    offload: { ...cfg.offload, destination: maskDestination(cfg.offload.destination) },
  };
  return secrets.redact(shown);
}
