/**
 * The sidecar's one HTTP port: the page (static files from web/ only), /metrics, /healthz, /readyz,
 * a small JSON API, and the WebSocket upgrade (handed to the preview hub). Errors to clients are
 * one-line JSON, never stack traces. Every request passes the request guard (Host; for writes also
 * Content-Type and Origin) first, and every text answer passes the secret masking.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { RefusalLog, RequestGuard } from './request-guard.js';

export const MAX_BODY_BYTES = 64 * 1024;

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** Requires the shared token when one is configured. */
  protected?: boolean;
  handle(req: http.IncomingMessage, body: unknown): Promise<{ status: number; type?: string; body: string | Buffer | object }>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  webDir: string;
  /** Exact URL paths served from a package's files (the page's third-party scripts). */
  vendor?: Record<string, string>;
  token: string;
  routes: Route[];
  guard: RequestGuard;
  refusals: RefusalLog;
  /** Masks configured secrets in every text answer (secrets.ts). */
  redact: (text: string) => string;
  onUpgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

export function tokenOk(req: http.IncomingMessage, token: string): boolean {
  if (!token) return true;
  const auth = req.headers.authorization;
  if (auth === `Bearer ${token}`) return true;
  const url = new URL(req.url ?? '/', 'http://x');
  return url.searchParams.get('token') === token;
}

/** Resolves a URL path to a file inside webDir, or null for anything that escapes it. */
export function resolveStatic(webDir: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const rel = decoded === '/' ? 'index.html' : decoded.replace(/^\/+/, '');
  const root = path.resolve(webDir);
  const full = path.resolve(root, rel);
  if (full !== root && !full.startsWith(root + path.sep)) return null;
  return full;
}

function sendRaw(
  res: http.ServerResponse,
  status: number,
  body: string | Buffer | object,
  type: string | undefined,
  redact: (s: string) => string,
): void {
  const isObj = typeof body === 'object' && !Buffer.isBuffer(body);
  const payload = isObj ? redact(JSON.stringify(body)) : typeof body === 'string' ? redact(body) : body;
  res.writeHead(status, {
    'content-type': type ?? (isObj ? 'application/json' : 'text/plain; charset=utf-8'),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(payload);
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY_BYTES) throw Object.assign(new Error(`request body over ${MAX_BODY_BYTES} bytes`), { status: 413 });
    chunks.push(c as Buffer);
  }
  if (n === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw Object.assign(new Error('request body is not valid JSON'), { status: 400 });
  }
}

export function startHttpServer(o: HttpServerOptions): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const route = o.routes.find((r) => r.path === url.pathname && r.method === req.method);
      const send = (status: number, body: string | Buffer | object, type?: string) => sendRaw(res, status, body, type, o.redact);
      const refuse = (reason: string) => {
        o.refusals.refused(`${req.method} ${url.pathname}`, reason);
        return send(403, { error: reason });
      };
      try {
        const badHost = o.guard.hostProblem(req);
        if (badHost) return refuse(badHost);
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          const badWrite = o.guard.writeProblem(req);
          if (route && badWrite) return refuse(badWrite);
        }
        if (route) {
          if (route.protected && !tokenOk(req, o.token))
            return send(401, { error: 'a valid token is required (Authorization: Bearer TOKEN)' });
          const body = req.method === 'POST' ? await readBody(req) : undefined;
          const r = await route.handle(req, body);
          return send(r.status, r.body, r.type);
        }
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: `${req.method} is not allowed here` });
        const file = o.vendor?.[url.pathname] ?? resolveStatic(o.webDir, url.pathname);
        if (!file) return send(400, { error: 'bad path' });
        fs.stat(file, (err, st) => {
          if (err || !st.isFile()) return send(404, { error: 'not found' });
          res.writeHead(200, {
            'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
            'content-length': st.size,
            'cache-control': 'no-cache',
            'x-content-type-options': 'nosniff',
          });
          if (req.method === 'HEAD') return res.end();
          fs.createReadStream(file).pipe(res);
        });
      } catch (e) {
        const status = (e as { status?: number }).status ?? 500;
        send(status, { error: status === 500 ? 'internal error' : (e as Error).message });
      }
    })();
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 50;
  if (o.onUpgrade) server.on('upgrade', o.onUpgrade);
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE')
        reject(new Error(`port ${o.port} on ${o.host} is already in use (another spimstream?); choose another with --port`));
      else if (e.code === 'EADDRNOTAVAIL') reject(new Error(`cannot listen on ${o.host}: address not available on this machine`));
      else reject(e);
    });
    server.listen(o.port, o.host, () => resolve(server));
  });
}
