/**
 * Who may talk to the sidecar's port. A browser on the acquisition PC runs pages of every origin,
 * and each can send requests to 127.0.0.1: a `text/plain` POST needs no CORS preflight, and a
 * DNS-rebinding page makes its own host name resolve to 127.0.0.1. So:
 * - every request must name this server in `Host`: an IP literal the server listens on (an IP
 *   cannot be rebound), `localhost`, this machine's name, or an entry of `server.allowed_hosts`;
 * - every state-changing request must be `Content-Type: application/json` (which a cross-site page
 *   cannot send without a preflight this server never answers) and, when it has an `Origin`, come
 *   from the page's own origin or one of `server.allowed_origins`.
 * Requests without `Origin` (curl, Prometheus, scripts) pass: they are not a browser acting for a
 * web page, and the token applies to them as before.
 */
import net from 'node:net';
import os from 'node:os';
import type http from 'node:http';
import { isLoopbackHost } from '../config/config.js';

export interface GuardOptions {
  /** The address the server listens on (`server.host`). */
  listenHost: string;
  allowedHosts: string[];
  allowedOrigins: string[];
}

/** The host name of a Host header (`[::1]:8080` → `::1`), lower case; null when malformed. */
export function hostName(header: string | undefined): string | null {
  if (!header) return null;
  const h = header.trim().toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::\d+)?$/.exec(h) ?? /^([^:[\]]+)(?::\d+)?$/.exec(h);
  return m ? m[1] : null;
}

function isWildcard(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::' || ip === '';
}

export class RequestGuard {
  private readonly names: Set<string>;

  constructor(private readonly o: GuardOptions) {
    const machine = os.hostname().toLowerCase();
    this.names = new Set([
      'localhost',
      machine,
      machine.split('.')[0],
      o.listenHost.toLowerCase(),
      ...o.allowedHosts.map((h) => h.toLowerCase()),
    ]);
  }

  /** Null when the Host header names this server, else why not. */
  hostProblem(req: http.IncomingMessage): string | null {
    const name = hostName(req.headers.host);
    if (name === null) return 'the Host header is missing or malformed';
    if (this.names.has(name) || name.endsWith('.localhost')) return null;
    if (net.isIP(name)) {
      // Any address of a wildcard listener reaches this server; a loopback listener is reached by loopback only.
      if (isWildcard(this.o.listenHost) || isLoopbackHost(name)) return null;
    }
    return `Host "${name}" is not this server (add it to server.allowed_hosts if it is)`;
  }

  /** Null when a browser's Origin is the page's own or allowed (absent: not a browser page). */
  originProblem(req: http.IncomingMessage): string | null {
    const origin = req.headers.origin;
    if (origin === undefined) return null;
    if (this.o.allowedOrigins.includes(origin)) return null;
    const own = `http://${(req.headers.host ?? '').toLowerCase()}`;
    if (origin.toLowerCase() === own) return null;
    return `Origin ${origin} is not this page's (add it to server.allowed_origins if it should write)`;
  }

  /** Null when a state-changing request may proceed, else the one-line reason for its 403. */
  writeProblem(req: http.IncomingMessage): string | null {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') return `a ${req.method} needs Content-Type: application/json (got ${type || 'none'})`;
    return this.originProblem(req);
  }
}

/** Logs refusals at most once per interval, with how many were refused since the last line. */
export class RefusalLog {
  private last = 0;
  private suppressed = 0;

  constructor(
    private readonly log: (msg: string) => void,
    private readonly intervalMs = 60_000,
  ) {}

  refused(what: string, reason: string): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    const more = this.suppressed > 0 ? ` (and ${this.suppressed} more refused since the last such line)` : '';
    this.suppressed = 0;
    this.last = now;
    this.log(`refused ${what}: ${reason}${more}`);
  }
}
