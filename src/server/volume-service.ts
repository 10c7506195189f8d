/**
 * The live volume of each watched stream: every frame task writes its plane, max-binned so that no
 * side exceeds preview.volume_max, into the stream's volume; when the stack's QC is complete the
 * volume goes out as one `volume` event (the hub sends it to the viewers that asked, latest wins).
 * Two buffers per stream by stack parity (stack-buffers.ts), as the MIP: a stack being filled never
 * overwrites the one being sent. Nothing is computed for a stream nobody watches in 3-D, nor while encoding is behind
 * (storage first); a stack missing a plane that way is not sent, and the viewer keeps the last
 * whole one.
 */
import type { Config } from '../config/config.js';
import type { FrameMeta, RingHeader } from '../ingest/ring-layout.js';
import { type EventBus, type StreamKey, streamId } from '../pipeline/events.js';
import type { VolumeTarget } from '../pipeline/preview-port.js';
import { StackBuffers } from './stack-buffers.js';

interface StreamVolume {
  stacks: StackBuffers;
  /** The newest plane's ring timestamp in each buffer (ns). */
  newest: [number, number];
  /** A plane of the stack in each buffer was skipped (workers behind): not sent. */
  partial: [boolean, boolean];
  step: number;
  width: number;
  height: number;
  depth: number;
}

/** The binning and size of a stream's volume for frames of `h`. */
export function volumeGeometry(h: RingHeader, maxSide: number): { step: number; width: number; height: number; depth: number } {
  const step = Math.max(1, Math.ceil(Math.max(h.width, h.height) / maxSide));
  return { step, width: Math.ceil(h.width / step), height: Math.ceil(h.height / step), depth: Math.max(1, h.zPlanes) };
}

export class VolumeService {
  private readonly streams = new Map<string, StreamVolume>();

  constructor(
    private readonly cfg: Config,
    private readonly bus: EventBus,
    /** Whether a viewer wants this stream's volume now. */
    private readonly wanted: (id: string) => boolean,
  ) {
    bus.on('stack-qc', (e) => this.onStack(e.stream, e.t));
    bus.on('acquisition-started', () => this.streams.clear());
  }

  target(meta: FrameMeta, stream: StreamKey, header: RingHeader, behind: boolean): VolumeTarget | null {
    const id = streamId(stream);
    if (!this.wanted(id)) return null;
    const g = volumeGeometry(header, this.cfg.preview.volume_max);
    if (meta.z >= g.depth) return null;
    let s = this.streams.get(id);
    const bytes = g.width * g.height * g.depth * 2;
    if (!s || s.stacks.bytes !== bytes || s.step !== g.step) {
      s = {
        stacks: new StackBuffers(bytes),
        newest: [0, 0],
        partial: [false, false],
        ...g,
      };
      this.streams.set(id, s);
    }
    const c = s.stacks.claim(meta.t);
    if (!c) return null;
    const parity = meta.t % 2;
    if (c.fresh) {
      s.newest[parity] = 0;
      s.partial[parity] = false;
    }
    if (behind) {
      s.partial[parity] = true;
      return null;
    }
    s.newest[parity] = Math.max(s.newest[parity], meta.timestampNs);
    return { buffer: c.buffer, step: g.step, offset: meta.z * g.width * g.height };
  }

  private onStack(stream: StreamKey, t: number): void {
    const id = streamId(stream);
    const s = this.streams.get(id);
    const buffer = s?.stacks.holding(t);
    if (!s || !buffer || !this.wanted(id) || s.partial[t % 2]) return;
    this.bus.emit('volume', {
      stream,
      t,
      width: s.width,
      height: s.height,
      depth: s.depth,
      step: s.step,
      voxelUm: [this.cfg.pixel_size_um.x * s.step, this.cfg.pixel_size_um.y * s.step, this.cfg.pixel_size_um.z],
      timestampMs: s.newest[t % 2] / 1e6,
      // A view of the buffer, valid while the event is handled: the hub encodes it into its message
      // at once, and the buffer is refilled only by stack t + 2.
      data: new Uint16Array(buffer),
    });
  }
}
