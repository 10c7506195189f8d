/**
 * Assembles frames into z-blocks: the planes of one inner-chunk z-slab (t, c, zb), full frame size,
 * in a bounded pool of SharedArrayBuffers. Workers copy planes in; when a block is complete (or its
 * stream moves on) it is sealed, and once every copy has landed it is handed out for encoding.
 */
import type { ArrayLayout } from '../zarr/layout.js';

export interface ZBlock {
  id: number;
  t: number;
  c: number;
  view: number;
  zb: number;
  buffer: SharedArrayBuffer;
  planesExpected: number;
  planesAssigned: number;
  copiesPending: number;
  /** 1 for planes that arrived; missing planes (lost frames) are written as fill value 0.
   * copiesPending counts the readers still using the block (its planes are read in place). */
  present: number[];
  sealed: boolean;
  /** ns timestamp of the first frame (latency to storage is measured from it). */
  firstTimestampNs: number;
}

export class BlockAssembler {
  private readonly free: SharedArrayBuffer[] = [];
  private allocated = 0;
  private readonly open = new Map<string, ZBlock>();
  private nextId = 1;
  readonly blockBytes: number;

  constructor(
    private readonly layout: ArrayLayout,
    private readonly maxBlocks: number,
    private readonly onReady: (b: ZBlock) => void,
  ) {
    const [, , cz, , ] = layout.chunk;
    this.blockBytes = cz * layout.shape[3] * layout.shape[4] * layout.bytesPerPixel;
  }


  private acquire(): SharedArrayBuffer | null {
    const b = this.free.pop();
    if (b) return b;
    if (this.allocated >= this.maxBlocks) return null;
    this.allocated++;
    return new SharedArrayBuffer(this.blockBytes);
  }

  release(b: ZBlock): void {
    this.free.push(b.buffer);
  }

  /**
   * Reserves the plane of frame (t, c, z, view) in its block. Returns the block and the byte offset,
   * or null when no block buffer is free (the frame will not be stored).
   */
  assign(t: number, c: number, z: number, view: number, tsNs: number): { block: ZBlock; offset: number } | null {
    const cz = this.layout.chunk[2];
    const zb = Math.floor(z / cz);
    const key = `${view}/${c}`;
    let b = this.open.get(key);
    if (b && (b.t !== t || b.zb !== zb)) {
      this.seal(key, b);
      b = undefined;
    }
    if (!b) {
      const buffer = this.acquire();
      if (!buffer) return null;
      const Z = this.layout.shape[2];
      b = {
        id: this.nextId++, t, c, view, zb, buffer, planesExpected: Math.min(cz, Z - zb * cz), planesAssigned: 0,
        copiesPending: 0, present: new Array<number>(cz).fill(0), sealed: false, firstTimestampNs: tsNs,
      };
      this.open.set(key, b);
    }
    b.planesAssigned++;
    b.present[z - zb * cz] = 1;
    b.copiesPending++;
    const offset = (z - zb * cz) * this.layout.shape[3] * this.layout.shape[4] * this.layout.bytesPerPixel;
    if (b.planesAssigned >= b.planesExpected) this.seal(key, b);
    return { block: b, offset };
  }

  /** A reader of one of b's planes is done (QC task, preview). */
  copied(b: ZBlock): void {
    b.copiesPending--;
    if (b.sealed && b.copiesPending === 0) this.onReady(b);
  }

  /** One more reader of a plane of b (a preview borrowing the plane). */
  retain(b: ZBlock): void {
    b.copiesPending++;
  }

  /** Undoes an assignment whose frame turned out torn: the plane stays fill value. */
  unassign(b: ZBlock, offset: number): void {
    const planeBytes = this.layout.shape[3] * this.layout.shape[4] * this.layout.bytesPerPixel;
    b.present[offset / planeBytes] = 0;
    this.copied(b);
  }

  private seal(key: string, b: ZBlock): void {
    if (this.open.get(key) === b) this.open.delete(key);
    if (b.sealed) return;
    b.sealed = true;
    if (b.copiesPending === 0) this.onReady(b);
  }

  /** Seals every open block (at stop or acquisition end). */
  sealAll(): void {
    for (const [k, b] of [...this.open]) this.seal(k, b);
  }

}
