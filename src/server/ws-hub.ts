/**
 * The WebSocket hub: one socket per viewer carries binary previews and small JSON messages (QC,
 * stack summaries, status, alerts, metadata). Latest wins per client: a client whose send buffer is
 * full simply misses messages (counted), so a stalled browser costs neither memory nor pipeline time.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { type EventBus, type PipelineEvents, streamId } from '../pipeline/events.js';
import { TokenBucket } from './token-bucket.js';
import { encodePreview } from './preview-protocol.js';
import { encodeVolume } from './volume-protocol.js';
import type { PreviewService, StreamDemand } from './preview-service.js';
import { tokenOk } from './http-server.js';
import type { RefusalLog, RequestGuard } from './request-guard.js';
import { subscribeProblem } from './ws-subscribe.js';

export const MAX_BUFFERED_BYTES = 1 << 20;
export const MAX_MESSAGE_BYTES = 16 * 1024;
const QC_HZ = 10;

interface Client {
  ws: WebSocket;
  stream: string | null;
  fps: number;
  format: string;
  window: [number, number] | null;
  mip: boolean;
  /** The stream's live volume after each stack (3-D and orthogonal views). */
  volume: boolean;
  /** This client's preview rate, kept on average. */
  bucket: TokenBucket;
  /** This client's volume bandwidth (`preview.volume_bytes_per_second`), in bytes. */
  volumeBytes: TokenBucket;
  skipped: number;
  sent: number;
}

export interface HubOptions {
  token: string;
  guard: RequestGuard;
  refusals: RefusalLog;
  /** Viewers at once (`server.max_clients`); a further one is closed with 1013 "try again later". */
  maxClients: number;
  /** Masks configured secrets in every JSON message (secrets.ts). */
  redact: (text: string) => string;
  defaultFps: number;
  defaultFormat: string;
  /** Each viewer's budget for live volumes, bytes per second: beyond it a viewer gets fewer volumes. */
  volumeBytesPerSecond: number;
  maxFps: number;
  hello: () => Record<string, unknown>;
  /** The periodic status, given the number of viewers connected. */
  status: (viewers: number) => Record<string, unknown>;
  /** The last minutes of QC series, sent to a new client after hello (its plots start filled). */
  history?: () => Record<string, unknown>;
}

export class WsHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
  readonly clients = new Set<Client>();
  private readonly lastQc = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  skippedTotal = 0;
  /** Volumes not sent to a viewer because its byte budget was spent (by design, not a backlog). */
  volumesOverBudget = 0;

  constructor(
    bus: EventBus,
    private readonly previews: PreviewService,
    private readonly o: HubOptions,
  ) {
    bus.on('preview', (e) => this.onPreview(e));
    bus.on('volume', (e) => this.onVolume(e));
    bus.on('frame-qc', (e) => this.onQc(e));
    bus.on('stack-qc', (e) => this.broadcast({ type: 'stack', stream: streamId(e.stream), t: e.t, qc: e.qc }));
    bus.on('alert', (e) =>
      this.broadcast({
        type: 'alert',
        name: e.name,
        stream: e.stream ? streamId(e.stream) : null,
        active: e.active,
        message: e.message,
        value: e.value,
      }),
    );
    bus.on('acquisition-started', () => this.broadcast({ type: 'hello', ...this.o.hello() }));
    this.timer = setInterval(() => this.broadcast({ type: 'status', ...this.o.status(this.clients.size) }), 1000);
    this.timer.unref();
  }

  get count(): number {
    return this.clients.size;
  }

  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const refuse = (code: number, msg: string): void => {
      socket.write(`HTTP/1.1 ${code} ${msg}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    };
    if (url.pathname !== '/ws') {
      refuse(404, 'Not Found');
      return;
    }
    // A browser sends no preflight for a WebSocket: Host (DNS rebinding) and Origin are checked here.
    const bad = this.o.guard.hostProblem(req) ?? this.o.guard.originProblem(req);
    if (bad) {
      this.o.refusals.refused('WebSocket', bad);
      refuse(403, 'Forbidden');
      return;
    }
    if (!tokenOk(req, this.o.token)) {
      refuse(401, 'Unauthorized');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.clients.size >= this.o.maxClients) {
        this.o.refusals.refused('a viewer', `server.max_clients (${this.o.maxClients}) viewers are connected`);
        ws.close(1013, `too many viewers (server.max_clients ${this.o.maxClients})`);
        return;
      }
      this.onConnection(ws);
    });
  }

  private onConnection(ws: WebSocket): void {
    const c: Client = {
      ws,
      stream: null,
      fps: this.o.defaultFps,
      format: this.o.defaultFormat,
      window: null,
      mip: false,
      volume: false,
      bucket: new TokenBucket(),
      volumeBytes: new TokenBucket(this.o.volumeBytesPerSecond, this.o.volumeBytesPerSecond),
      skipped: 0,
      sent: 0,
    };
    this.clients.add(c);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(c, data, isBinary));
    ws.on('close', () => {
      this.clients.delete(c);
      this.updateDemand();
    });
    ws.on('error', () => ws.terminate());
    this.sendJson(c, { type: 'hello', ...this.o.hello() });
    if (this.o.history) this.sendRaw(c, JSON.stringify({ type: 'history', series: this.o.history() }));
  }

  private onMessage(c: Client, data: RawData, isBinary: boolean): boolean | undefined {
    if (isBinary) return this.sendJson(c, { type: 'error', message: 'binary messages are not accepted' });
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(data.toString()) as Record<string, unknown>;
    } catch {
      return this.sendJson(c, { type: 'error', message: 'message is not valid JSON' });
    }
    if (m.type === 'subscribe') {
      const bad = subscribeProblem(m);
      if (bad) return this.sendJson(c, { type: 'error', message: `subscribe: ${bad}` });
      if (typeof m.stream === 'string') c.stream = m.stream;
      if (typeof m.fps === 'number') c.fps = Math.min(this.o.maxFps, m.fps);
      if (typeof m.format === 'string') c.format = m.format;
      if (m.window === null) c.window = null;
      else if (Array.isArray(m.window)) c.window = [m.window[0] as number, m.window[1] as number];
      if (typeof m.mip === 'boolean') c.mip = m.mip;
      if (typeof m.volume === 'boolean') c.volume = m.volume;
      this.updateDemand();
      this.sendJson(c, {
        type: 'subscribed',
        stream: c.stream,
        fps: c.fps,
        format: c.format,
        window: c.window,
        mip: c.mip,
        volume: c.volume,
      });
    } else if (m.type === 'ping') {
      this.sendJson(c, { type: 'pong', t: m.t ?? null });
    } else {
      this.sendJson(c, { type: 'error', message: `unknown message type ${JSON.stringify(m.type)}` });
    }
  }

  private updateDemand(): void {
    const d = new Map<string, StreamDemand>();
    for (const c of this.clients) {
      if (!c.stream) continue;
      const cur = d.get(c.stream);
      d.set(c.stream, {
        fps: Math.max(cur?.fps ?? 0, c.fps),
        format: c.format,
        window: c.window,
        mip: (cur?.mip ?? false) || c.mip,
        volume: (cur?.volume ?? false) || c.volume,
      });
    }
    this.previews.setDemand(d);
  }

  /** Sends unless the client is backed up; returns whether it was sent. */
  private sendRaw(c: Client, payload: Buffer | string): boolean {
    if (c.ws.readyState !== WebSocket.OPEN) return false;
    if (c.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      c.skipped++;
      this.skippedTotal++;
      return false;
    }
    c.ws.send(typeof payload === 'string' ? this.o.redact(payload) : payload);
    c.sent++;
    return true;
  }

  private sendJson(c: Client, m: Record<string, unknown>): boolean {
    return this.sendRaw(c, JSON.stringify(m));
  }

  broadcast(m: Record<string, unknown>): void {
    if (this.clients.size === 0) return;
    const s = JSON.stringify(m);
    for (const c of this.clients) this.sendRaw(c, s);
  }

  private onPreview(e: PipelineEvents['preview']): void {
    const id = streamId(e.stream);
    let payload: Buffer | null = null;
    const now = performance.now();
    for (const c of this.clients) {
      if (c.stream !== id) continue;
      if (e.kind === 'mip') {
        if (!c.mip) continue;
      } else {
        // Previews arrive with jitter; a bucket keeps each client's average at its rate without
        // dropping every other one when two arrive slightly early.
        if (!c.bucket.refill(c.fps, now)) continue;
      }
      payload ??= encodePreview({
        kind: e.kind,
        level: e.level,
        format: e.format,
        width: e.width,
        height: e.height,
        t: e.meta.t,
        c: e.meta.c,
        z: e.meta.z,
        view: e.meta.view,
        lo: e.lo,
        hi: e.hi,
        timestampMs: e.meta.timestampNs / 1e6,
        data: e.data,
        saturated: e.saturated,
      });
      if (this.sendRaw(c, payload) && e.kind !== 'mip') c.bucket.take();
    }
  }

  /**
   * A stack's volume to the viewers that asked for it; one backed up, or over its byte budget,
   * misses it (latest wins).
   */
  private onVolume(e: PipelineEvents['volume']): void {
    const id = streamId(e.stream);
    let payload: Buffer | null = null;
    const now = performance.now();
    for (const c of this.clients) {
      if (c.stream !== id || !c.volume) continue;
      if (!c.volumeBytes.refill(this.o.volumeBytesPerSecond, now)) {
        this.volumesOverBudget++;
        continue;
      }
      payload ??= encodeVolume({
        width: e.width,
        height: e.height,
        depth: e.depth,
        t: e.t,
        view: Number(e.stream.view),
        step: e.step,
        voxelUm: e.voxelUm,
        timestampMs: e.timestampMs,
        data: e.data,
      });
      if (this.sendRaw(c, payload)) c.volumeBytes.take(payload.length);
    }
  }

  private onQc(e: PipelineEvents['frame-qc']): void {
    if (this.clients.size === 0) return;
    const id = streamId(e.stream);
    const now = performance.now();
    // Throttled, except frames that carry a drift estimate (one plane per stack by default).
    if (now - (this.lastQc.get(id) ?? 0) < 1000 / QC_HZ && !e.qc.drift) return;
    this.lastQc.set(id, now);
    const q = e.qc;
    this.broadcast({
      type: 'qc',
      stream: id,
      seq: e.meta.seq,
      t: e.meta.t,
      c: e.meta.c,
      z: e.meta.z,
      focus: q.focus,
      saturated_ratio: q.saturatedRatio,
      underexposed_ratio: q.underexposedRatio,
      min: q.min,
      max: q.max,
      mean: q.mean,
      p001: q.p001,
      p50: q.p50,
      p999: q.p999,
      histogram: q.histogram,
      histogram_lo: q.histogramLo,
      histogram_hi: q.histogramHi,
      drift: q.drift,
      signal: q.signal,
      snr: q.snr,
      latency_ms: e.latencyMs,
    });
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.clients) c.ws.terminate();
    this.wss.close();
  }
}
