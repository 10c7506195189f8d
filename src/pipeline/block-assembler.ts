/**
 * Assembles frames into z-blocks: the planes of one inner-chunk z-slab (t, c, zb), full frame size,
 * chunk-major (workers/kernels/tiles.ts), in a bounded pool of SharedArrayBuffers. Frame tasks write
 * planes in; when a block is complete (or its stream moves on) it is sealed, and once every write
 * has landed it is handed out for encoding.
 */
import { chunkBytesOf, type TileGeometry } from '../../workers/kernels/tiles.js';

export interface ZBlock {
  id: number;
  t: number;
  c: number;
  view: number;
  zb: number;
  buffer: SharedArrayBuffer;
  /** One byte per tile: 1 once a frame task wrote a non-zero sample into it. */
  nonZero: SharedArrayBuffer;
  /** With the pyramid: each plane's first reduction step (uint32, half size), for the next level. */
  ext: SharedArrayBuffer | null;
  planesExpected: number;
  planesAssigned: number;
  copiesPending: number;
  /** 1 for planes that arrived; missing planes (lost frames) are written as fill value 0.
   * copiesPending counts the frame tasks still writing into the block. */
  present: number[];
  sealed: boolean;
  /** When it was opened, in the order of the pool's opens and seals. */
  openSeq: number;
  /** ns timestamp of the first frame (latency to storage is measured from it). */
  firstTimestampNs: number;
}

/**
 * Blocks in a pool at most: 256 fill a GiB pool down to 256² uint16 frames (one 4 MiB chunk each);
 * a pool of tiny frames would otherwise allow millions of blocks, which buy nothing but allocation.
 */
const BLOCKS_MAX = 256;

interface Buffers {
  buffer: SharedArrayBuffer;
  nonZero: SharedArrayBuffer;
  ext: SharedArrayBuffer | null;
}

export class BlockAssembler {
  private readonly free: Buffers[] = [];
  private allocated = 0;
  private readonly open = new Map<string, ZBlock>();
  private nextId = 1;
  /** Counts opens and seals: which block was sealed before which was opened. */
  private seq = 0;
  /** Sealed blocks not yet released (waiting for their encode, or in it), with when they were sealed, in seal order. */
  private readonly sealedInUse = new Map<ZBlock, number>();
  readonly blockBytes: number;

  constructor(
    readonly geometry: TileGeometry,
    /** Z extent of the array (the last z-block may hold fewer planes). */
    private readonly zPlanes: number,
    readonly capacity: number,
    private readonly onReady: (b: ZBlock) => void,
    /** Bytes of a block's pyramid region (0 = no pyramid below this level). */
    private readonly extBytes = 0,
  ) {
    this.blockBytes = BlockAssembler.bytesPerBlock(geometry);
  }

  /** A z-block holds every chunk of one z-slab, edge chunks padded to the full chunk shape (plus its pyramid region). */
  static bytesPerBlock(geometry: TileGeometry, extBytes = 0): number {
    return geometry.tilesX * geometry.tilesY * chunkBytesOf(geometry) + extBytes;
  }

  /** The pyramid region of a block: one uint32 per sample of the next level, per plane. */
  static extBytesOf(geometry: TileGeometry): number {
    return geometry.cz * ((geometry.width + 1) >> 1) * ((geometry.height + 1) >> 1) * 4;
  }

  /** Blocks the configured pool size holds (at least 2: one filling, one encoding; at most BLOCKS_MAX). */
  static capacity(geometry: TileGeometry, poolBytes: number, extBytes = 0): number {
    return Math.max(2, Math.min(BLOCKS_MAX, Math.floor(poolBytes / BlockAssembler.bytesPerBlock(geometry, extBytes))));
  }

  /** Allocates the pool's blocks now instead of on first use; returns the buffers of the free blocks. */
  preallocate(): SharedArrayBuffer[] {
    while (this.allocated < this.capacity) {
      this.allocated++;
      this.free.push(this.newBuffers());
    }
    return this.free.flatMap((b) => (b.ext ? [b.buffer, b.ext] : [b.buffer]));
  }

  private newBuffers(): Buffers {
    return {
      buffer: new SharedArrayBuffer(this.blockBytes),
      nonZero: new SharedArrayBuffer(this.geometry.tilesX * this.geometry.tilesY),
      ext: this.extBytes > 0 ? new SharedArrayBuffer(this.extBytes) : null,
    };
  }

  private acquire(): Buffers | null {
    const b = this.free.pop();
    if (b) {
      new Uint8Array(b.nonZero).fill(0);
      return b;
    }
    if (this.allocated >= this.capacity) return null;
    this.allocated++;
    return this.newBuffers();
  }

  /** Blocks filling, being written by frame tasks, or waiting for / in encoding. */
  get inUse(): number {
    return this.allocated - this.free.length;
  }

  /**
   * Encoding (or the disk behind it) is behind: the pool is over half used, and a block sealed before
   * one that is filling now is still in use when that one is half full. Right after a block boundary
   * every stream's previous block still encodes, which is normal: two channels interleaved per plane
   * fill and seal their blocks together, so a 4-block pool is then full for a moment.
   */
  encodesBehind(): boolean {
    if (this.inUse * 2 <= this.capacity) return false;
    // A Map iterates in insertion order, i.e. in the order of the seals: the first is the oldest.
    const oldest = this.sealedInUse.values().next().value;
    if (oldest === undefined) return false;
    for (const b of this.open.values()) if (b.openSeq > oldest && b.planesAssigned * 2 >= b.planesExpected) return true;
    return false;
  }

  release(b: ZBlock): void {
    this.sealedInUse.delete(b);
    this.free.push({ buffer: b.buffer, nonZero: b.nonZero, ext: b.ext });
  }

  /**
   * Reserves the plane of frame (t, c, z, view) in its block. Returns the block and the plane index
   * inside it, or null when no block buffer is free (the frame will not be stored).
   */
  assign(t: number, c: number, z: number, view: number, tsNs: number): { block: ZBlock; plane: number } | null {
    const cz = this.geometry.cz;
    const zb = Math.floor(z / cz);
    const key = `${view}/${c}`;
    let b = this.open.get(key);
    if (b && (b.t !== t || b.zb !== zb)) {
      this.seal(key, b);
      b = undefined;
    }
    if (!b) {
      const buf = this.acquire();
      if (!buf) return null;
      b = {
        id: this.nextId++,
        t,
        c,
        view,
        zb,
        buffer: buf.buffer,
        nonZero: buf.nonZero,
        ext: buf.ext,
        planesExpected: Math.min(cz, this.zPlanes - zb * cz),
        planesAssigned: 0,
        copiesPending: 0,
        present: new Array<number>(cz).fill(0),
        sealed: false,
        openSeq: ++this.seq,
        firstTimestampNs: tsNs,
      };
      this.open.set(key, b);
    }
    b.planesAssigned++;
    b.present[z - zb * cz] = 1;
    b.copiesPending++;
    if (b.planesAssigned >= b.planesExpected) this.seal(key, b);
    return { block: b, plane: z - zb * cz };
  }

  /** The frame task writing one of b's planes is done. */
  copied(b: ZBlock): void {
    b.copiesPending--;
    if (b.sealed && b.copiesPending === 0) this.onReady(b);
  }

  /** Undoes an assignment whose frame turned out torn (or was never written): the plane becomes fill value. */
  unassign(b: ZBlock, plane: number): void {
    b.present[plane] = 0;
    this.copied(b);
  }

  private seal(key: string, b: ZBlock): void {
    if (this.open.get(key) === b) this.open.delete(key);
    if (b.sealed) return;
    b.sealed = true;
    this.sealedInUse.set(b, ++this.seq);
    if (b.copiesPending === 0) this.onReady(b);
  }

  /** Seals every open block (at stop or acquisition end). */
  sealAll(): void {
    for (const [k, b] of [...this.open]) this.seal(k, b);
  }
}
