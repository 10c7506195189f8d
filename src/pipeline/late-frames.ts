/**
 * Late frames: a frame for a plane whose chunk has already gone to encoding cannot be stored
 * without damaging what is there. Each stream (channel × view) fills one z-block at a time; the
 * block is sealed when the stream moves to another z-block or timepoint, and a timepoint's shards
 * are finished once the stream has left it. A frame for a timepoint the stream has left, for a
 * z-block of the current timepoint already sealed, or for a plane already taken is therefore late:
 * counted unstored (`late`) and never written, so a sealed shard is never replaced. Memory per
 * stream: the current timepoint's planes plus the ranges of timepoints seen (one range for a
 * producer that goes forward).
 */

/** Sorted, disjoint, inclusive ranges of integers. */
class Ranges {
  private readonly r: [number, number][] = [];

  has(v: number): boolean {
    let lo = 0;
    let hi = this.r.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = this.r[mid];
      if (v < a) hi = mid - 1;
      else if (v > b) lo = mid + 1;
      else return true;
    }
    return false;
  }

  add(v: number): void {
    if (this.has(v)) return;
    let i = 0;
    while (i < this.r.length && this.r[i][1] < v) i++;
    const joinLeft = i > 0 && this.r[i - 1][1] === v - 1;
    const joinRight = i < this.r.length && this.r[i][0] === v + 1;
    if (joinLeft && joinRight) {
      this.r[i - 1][1] = this.r[i][1];
      this.r.splice(i, 1);
    } else if (joinLeft) this.r[i - 1][1] = v;
    else if (joinRight) this.r[i][0] = v;
    else this.r.splice(i, 0, [v, v]);
  }
}

interface StreamState {
  t: number;
  zb: number;
  planes: Set<number>;
  sealed: Set<number>;
  seen: Ranges;
}

export class LateFrames {
  private readonly streams = new Map<string, StreamState>();

  /** Whether frame (t, z) of `stream`, in z-block zb, would land in a chunk already sealed. */
  isLate(stream: string, t: number, z: number, zb: number): boolean {
    const s = this.streams.get(stream);
    if (!s) return false;
    if (t !== s.t) return s.seen.has(t);
    return s.planes.has(z) || s.sealed.has(zb);
  }

  /**
   * The z-block assembler was asked for (t, zb): that sealed the stream's previous block if it was
   * another one. `stored`: the frame got its plane.
   */
  assigned(stream: string, t: number, z: number, zb: number, stored: boolean): void {
    let s = this.streams.get(stream);
    if (!s) {
      s = { t, zb, planes: new Set(), sealed: new Set(), seen: new Ranges() };
      this.streams.set(stream, s);
    }
    if (t !== s.t) {
      s.t = t;
      s.zb = zb;
      s.planes.clear();
      s.sealed.clear();
    } else if (zb !== s.zb) {
      s.sealed.add(s.zb);
      s.zb = zb;
    }
    s.seen.add(t);
    if (stored) s.planes.add(z);
  }

  /** A new acquisition: nothing is sealed yet. */
  clear(): void {
    this.streams.clear();
  }
}
