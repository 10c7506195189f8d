/**
 * When partial shards close (src/pipeline/timepoint-flush.ts): only once the stream has moved to a
 * later timepoint and every z-block it opened for the earlier one is with the store; and which
 * offload files may go (src/offload/batch-plan.ts): shards, then metadata, the manifest last.
 */
import { describe, expect, it } from 'vitest';
import { TimepointFlush } from '../src/pipeline/timepoint-flush.js';
import { eligibleFiles, pickBatch } from '../src/offload/batch-plan.js';
import type { FilePhase, FileState, StoreState } from '../src/offload/journal.js';

function tracker() {
  const said: string[] = [];
  const tp = new TimepointFlush({
    begin: (t, c, view) => said.push(`begin ${t}/${c}/${view}`),
    flush: (t, c, view) => said.push(`flush ${t}/${c}/${view}`),
  });
  return { tp, said };
}

describe("closing a timepoint's shards", () => {
  it('flushes t only after the stream moved on and every block opened for t was delivered', () => {
    const { tp, said } = tracker();
    tp.frame(0, 0, 0);
    tp.blockOpened(0, 0, 0);
    tp.blockOpened(0, 0, 0);
    tp.frame(0, 0, 0); // the same t again (a frame offered after 'wait'): nothing new
    tp.blockDelivered(0, 0, 0);
    tp.blockDelivered(0, 0, 0);
    expect(said).toEqual(['begin 0/0/0']); // every block in, but the stream has not moved on
    tp.frame(1, 0, 0);
    expect(said).toEqual(['begin 0/0/0', 'begin 1/0/0', 'flush 0/0/0']);
  });

  it('a block still encoding holds the flush until it is delivered; streams are independent', () => {
    const { tp, said } = tracker();
    tp.frame(5, 0, 0);
    tp.frame(5, 1, 0);
    tp.blockOpened(5, 0, 0);
    tp.blockOpened(5, 1, 0);
    tp.frame(6, 0, 0); // channel 0 moves on with its block of t=5 not yet delivered
    expect(said).toEqual(['begin 5/0/0', 'begin 5/1/0', 'begin 6/0/0']);
    tp.blockDelivered(5, 1, 0); // channel 1's block: its stream has not moved on
    expect(said).not.toContain('flush 5/1/0');
    tp.blockDelivered(5, 0, 0);
    expect(said.at(-1)).toBe('flush 5/0/0');
    tp.blockDelivered(5, 0, 0); // a late duplicate after the flush: nothing more
    expect(said.filter((s) => s === 'flush 5/0/0')).toHaveLength(1);
  });
});

function file(f: string, phase: FilePhase, bytes = 1000, verified = false): FileState {
  return { f, bytes, store: f.split('/')[0], phase, queuedAt: 0, verified };
}

describe('which offload files may go', () => {
  const files = [file('a/c/0', 'data'), file('a/zarr.json', 'metadata'), file('a/spimstream-manifest.json', 'manifest')];
  const stores = (finished: boolean) => new Map<string, StoreState>([['a', { finished } as StoreState]]);

  it('shards as written; metadata once the store is finished and its shards are verified; the manifest last', () => {
    expect(eligibleFiles(files, stores(false), 'shard').map((f) => f.f)).toEqual(['a/c/0']);
    expect(eligibleFiles(files, stores(false), 'acquisition')).toEqual([]);
    expect(eligibleFiles(files, stores(true), 'shard').map((f) => f.f)).toEqual(['a/c/0']);
    const shardDone = [file('a/c/0', 'data', 1000, true), ...files.slice(1)];
    expect(eligibleFiles(shardDone, stores(true), 'shard').map((f) => f.f)).toEqual(['a/zarr.json']);
    const metaDone = [shardDone[0], file('a/zarr.json', 'metadata', 10, true), files[2]];
    expect(eligibleFiles(metaDone, stores(true), 'shard').map((f) => f.f)).toEqual(['a/spimstream-manifest.json']);
  });

  it('a batch holds at least one file, at most 256, and about 10 s at the last rate (8 MiB to 1 GiB)', () => {
    const many = Array.from({ length: 300 }, (_, i) => file(`a/c/${i}`, 'data', 1 << 20));
    expect(pickBatch(many, 0).pick).toHaveLength(8); // no rate yet: 8 MiB
    expect(pickBatch(many, 2 << 20).pick).toHaveLength(20); // 2 MiB/s × 10 s
    expect(pickBatch(many, 1e12).pick).toHaveLength(256);
    const huge = [file('a/c/big', 'data', 5 * 2 ** 30), file('a/c/next', 'data')];
    expect(pickBatch(huge, 0)).toEqual({ pick: [huge[0]], bytes: 5 * 2 ** 30 });
  });
});
