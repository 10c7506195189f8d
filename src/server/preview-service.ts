/**
 * Decides which frames become previews: per stream, at most the rate viewers asked for, and only the
 * latest frame (a preview in flight means newer frames are skipped, never queued). Also keeps each
 * stream's stack MIP accumulator and renders it when a stack completes. Emits `preview` events.
 * The pipeline offers frames through the preview port it was built with; nothing here calls into it.
 */
import { type EventBus, type StreamKey, streamId } from '../pipeline/events.js';
import type { WorkerPool } from '../pipeline/worker-pool.js';
import { TokenBucket } from './token-bucket.js';
import type { Config } from '../config/config.js';
import type { FrameMeta, RingHeader } from '../ingest/ring-layout.js';
import type { PreviewFrame, PreviewPort, PreviewRequest, VolumeTarget } from '../pipeline/preview-port.js';
import { StackBuffers } from './stack-buffers.js';
import { VolumeService } from './volume-service.js';
import { halfOf } from '../../workers/kernels/pyramid.js';
import { bytesPerPixel } from '../ingest/ring-layout.js';
import { previewBin } from '../../workers/kernels/preview.js';
import type { PreviewTask } from '../../workers/tasks.js';

export interface StreamDemand {
  fps: number;
  format: string;
  window: [number, number] | null;
  mip: boolean;
  /** A viewer wants the stream's live volume (3-D and orthogonal views). */
  volume?: boolean;
}

interface StreamPreview {
  inFlight: boolean;
  /** The rate the viewers asked for, kept on average. */
  bucket: TokenBucket;
  /** The stack MIP being accumulated and the previous one; a stack is rendered only from its own buffer. */
  mip: StackBuffers | null;
  mipInFlight: boolean;
  /** The level-1 plane a frame task writes for this stream's preview (one preview in flight at a time). */
  levelBuffer: SharedArrayBuffer | null;
}

/**
 * Previews per second per stream while the workers are behind (QC sampled): previews yield first,
 * then QC, storage last. The page still shows one live frame a second.
 */
export const PREVIEW_FPS_WHEN_BEHIND = 1;

export class PreviewService implements PreviewPort {
  private readonly streams = new Map<string, StreamPreview>();
  private demand = new Map<string, StreamDemand>();
  private throttling = false;
  /** The ring header of the frames offered last (the MIP's geometry at a stack's end). */
  private header: RingHeader | null = null;
  private readonly volumes: VolumeService;

  constructor(
    private readonly cfg: Config,
    private readonly bus: EventBus,
    private readonly workers: WorkerPool,
  ) {
    bus.on('stack-qc', (e) => this.onStack(e.stream, e.t));
    bus.on('acquisition-started', () => this.streams.clear());
    this.volumes = new VolumeService(cfg, bus, (id) => this.demand.get(id)?.volume === true);
  }

  volumeTarget(meta: FrameMeta, stream: StreamKey, header: RingHeader, behind: boolean): VolumeTarget | null {
    return this.volumes.target(meta, stream, header, behind);
  }

  /** The hub tells us what viewers want, per stream id ("channel/view"). */
  setDemand(d: Map<string, StreamDemand>): void {
    this.demand = d;
  }

  private state(id: string): StreamPreview {
    let s = this.streams.get(id);
    if (!s)
      this.streams.set(
        id,
        (s = {
          inFlight: false,
          bucket: new TokenBucket(),
          mip: null,
          mipInFlight: false,
          levelBuffer: null,
        }),
      );
    return s;
  }

  private mipGeometry(): { step: number; w: number; h: number } | null {
    const h = this.header;
    if (!h) return null;
    const step = previewBin(h.width, h.height, this.cfg.preview.max_size);
    return { step, w: Math.ceil(h.width / step), h: Math.ceil(h.height / step) };
  }

  mipTarget(meta: FrameMeta, stream: StreamKey, header: RingHeader): { buffer: SharedArrayBuffer; step: number } | null {
    this.header = header;
    const id = streamId(stream);
    if (!this.demand.get(id)?.mip) return null;
    const g = this.mipGeometry();
    if (!g) return null;
    const s = this.state(id);
    if (!s.mip || s.mip.bytes !== g.w * g.h * 2) s.mip = new StackBuffers(g.w * g.h * 2);
    const c = s.mip.claim(meta.t);
    return c ? { buffer: c.buffer, step: g.step } : null;
  }

  private onStack(stream: StreamKey, t: number): void {
    const id = streamId(stream);
    const d = this.demand.get(id);
    const s = this.streams.get(id);
    const g = this.mipGeometry();
    // QC results (and so stack summaries) can arrive after the next stacks' planes were dispatched:
    // a stack whose planes never went into its buffer (subscribed later) has no MIP to show.
    const buffer = s?.mip?.holding(t);
    if (!d?.mip || !s || !buffer || !g || s.mipInFlight) return;
    s.mipInFlight = true;
    this.render(buffer, 0, g.w, g.h, 2, true, d, stream, {
      seq: -1,
      cameraCounter: 0,
      timestampNs: 0,
      t,
      c: 0,
      z: 0,
      view: Number(stream.view),
      flags: 0,
    }).finally(() => {
      s.mipInFlight = false;
    });
  }

  /**
   * Called for every frame: borrows it (retain, later release) when a preview is due. With the
   * pyramid on (`level1`) and a preview smaller than the frame, the live view is level 1: the frame
   * task writes the frame's level-1 plane and the preview is rendered from it once the task is done.
   */
  offer(f: PreviewFrame): PreviewRequest | null {
    const { ref, meta, stream, level1, header: h } = f;
    this.header = h;
    const id = streamId(stream);
    const d = this.demand.get(id);
    if (!d) return null;
    const s = this.state(id);
    const now = performance.now();
    const behind = f.workersBehind;
    const fps = behind ? Math.min(d.fps, PREVIEW_FPS_WHEN_BEHIND) : d.fps;
    // Counted when the viewer's own rate would have rendered this frame and the cap did not.
    const capped = behind && fps < d.fps && !s.inFlight && !s.bucket.wouldHave(fps, now) && s.bucket.wouldHave(d.fps, now);
    const hasToken = s.bucket.refill(fps, now);
    if (capped) {
      this.bus.emit('preview-throttled', { stream }); // the pipeline counts it
      if (!this.throttling)
        this.bus.emit('log', {
          level: 'warn',
          msg: `previews throttled to ${PREVIEW_FPS_WHEN_BEHIND} per second per stream: the workers are behind (storage first)`,
        });
      this.throttling = true;
    } else if (!behind && this.throttling) {
      this.throttling = false;
      this.bus.emit('log', { level: 'info', msg: "previews back at the viewers' rate" });
    }
    if (s.inFlight || !hasToken) return null;
    s.inFlight = true;
    s.bucket.take();
    ref.retain();
    const done = () => {
      s.inFlight = false;
      ref.release();
    };
    const bpp = bytesPerPixel(h.dtype);
    if (!level1 || previewBin(h.width, h.height, this.cfg.preview.max_size) < 2) {
      void this.render(ref.buffer, ref.offset, h.width, h.height, bpp, false, d, stream, meta).finally(done);
      return null;
    }
    const w2 = halfOf(h.width);
    const h2 = halfOf(h.height);
    if (!s.levelBuffer || s.levelBuffer.byteLength !== w2 * h2 * 2) s.levelBuffer = new SharedArrayBuffer(w2 * h2 * 2);
    const levelOut = s.levelBuffer;
    return {
      levelOut,
      ready: (ok) => {
        if (!ok) return done();
        const saturation = { frames: ref.buffer, frameOffset: ref.offset, width: h.width, height: h.height, bytesPerPixel: bpp, factor: 2 };
        void this.render(levelOut, 0, w2, h2, 2, false, d, stream, meta, 1, saturation).finally(done);
      },
    };
  }

  private async render(
    buf: SharedArrayBuffer,
    offset: number,
    w: number,
    h: number,
    bpp: number,
    isMip: boolean,
    d: StreamDemand,
    stream: StreamKey,
    meta: FrameMeta,
    level = 0,
    saturation: PreviewTask['saturation'] = null,
  ): Promise<void> {
    try {
      const r = await this.workers.preview({
        kind: 'preview',
        frames: buf,
        frameOffset: offset,
        width: w,
        height: h,
        bytesPerPixel: bpp,
        isMip,
        saturationLevel: this.cfg.camera.saturation_level,
        maxSize: this.cfg.preview.max_size,
        format: d.format,
        quality: this.cfg.preview.quality,
        clipPercent: this.cfg.preview.clip_percent,
        window: d.window,
        saturation,
        simd: this.cfg.pipeline.kernels === 'simd',
      });
      this.bus.emit('preview', {
        stream,
        kind: isMip ? 'mip' : 'plane',
        level,
        meta,
        width: r.width,
        height: r.height,
        format: r.format,
        data: r.data,
        lo: r.lo,
        hi: r.hi,
        saturated: r.saturated,
      });
    } catch (e) {
      this.bus.emit('log', { level: 'warn', msg: `preview failed: ${(e as Error).message}` });
    }
  }
}
