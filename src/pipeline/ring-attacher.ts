/**
 * Keeps the pipeline attached to the ring at its path: waits for a valid ring, takes the start
 * position at once (frames published while the ingest thread starts are still read), attaches,
 * and after a ring error (a producer that crashed and recreated its ring) waits and attaches again.
 */
import { startPosition } from '../ingest/ring-ingest.js';
import { wasSeen } from '../ingest/ring-seen.js';
import { waitForRing } from '../ingest/ring-wait.js';
import type { EventBus } from './events.js';
import type { Pipeline } from './pipeline.js';

export class RingAttacher {
  private stopped = false;
  private attaching: Promise<void>;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly bus: EventBus,
    private readonly waitSeconds: number,
  ) {
    this.attaching = this.start();
    bus.on('ring-detached', () => {
      if (this.stopped) return;
      bus.emit('log', { level: 'info', msg: `waiting for a valid ring at ${pipeline.ringPath} to attach again` });
      this.attaching = this.start();
    });
  }

  private start(): Promise<void> {
    const p = this.attach();
    p.catch((e: unknown) => this.bus.emit('log', { level: 'error', msg: (e as Error).message }));
    return p;
  }

  private async attach(): Promise<void> {
    const reader = await waitForRing(
      this.pipeline.ringPath,
      this.waitSeconds,
      (level, msg) => this.bus.emit('log', { level, msg }),
      () => this.stopped,
    );
    if (!reader) return;
    // The ingest thread reads through this descriptor: the ring validated here is the one read,
    // even if its producer removes it at once (a short acquisition that ended before the thread ran).
    const header = reader.header;
    let position: ReturnType<typeof startPosition>;
    try {
      position = startPosition(reader, (id) => wasSeen(this.pipeline.ringPath, id));
    } catch (e) {
      reader.close();
      throw e;
    }
    const r = position.recovered;
    if (r && !this.stopped) {
      this.bus.emit('log', {
        level: 'warn',
        msg: `acquisition ${r.id} finished before spimstream attached: its ${r.inRing} frames still in the ring are read and stored${r.overwritten > 0 ? `, ${r.overwritten} published before spimstream attached were overwritten (counted overrun)` : ''}; start spimstream before the producer`,
      });
    }
    if (this.stopped) reader.close();
    else this.pipeline.attach(header, position, reader.fd);
  }

  /** No more attaching; resolves when an attach in progress has given up or finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.attaching.catch(() => undefined);
  }
}
