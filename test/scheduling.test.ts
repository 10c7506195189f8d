import { describe, expect, it } from 'vitest';
import { queueOptionsSymbol } from 'piscina';
import { TwoLevelTaskQueue, urgent } from '../src/pipeline/task-queue.js';
import { OutputSlab } from '../src/pipeline/output-slab.js';

// Stand-ins for piscina's queued task records: the queue reads only the payload's queue options.
function queued(name: string, isUrgent: boolean): Parameters<TwoLevelTaskQueue['push']>[0] {
  const payload = isUrgent ? urgent({ name }) : { name };
  return { name, [queueOptionsSymbol]: (payload as Record<symbol, unknown>)[queueOptionsSymbol] ?? null } as unknown as Parameters<
    TwoLevelTaskQueue['push']
  >[0];
}
const nameOf = (t: unknown) => (t as { name: string } | null)?.name ?? null;

describe('worker scheduling', () => {
  it('frame tasks (urgent) leave the queue before encodes, each level in FIFO order; remove works on both', () => {
    const q = new TwoLevelTaskQueue();
    const tasks = [queued('enc1', false), queued('enc2', false), queued('qc1', true), queued('enc3', false), queued('qc2', true)];
    for (const t of tasks) q.push(t);
    expect(q.size).toBe(5);
    q.remove(tasks[1]);
    expect(q.size).toBe(4);
    const order: (string | null)[] = [];
    while (q.size > 0) order.push(nameOf(q.shift()));
    expect(order).toEqual(['qc1', 'qc2', 'enc1', 'enc3']);
    expect(q.shift()).toBeNull();
  });

  it('the output slab grants a whole block of slots or waits, first come first served', async () => {
    const slab = new OutputSlab(1024, 6);
    const a = await slab.acquire(4);
    expect(new Set(a).size).toBe(4);
    const granted: string[] = [];
    const b = slab.acquire(4).then((s) => {
      granted.push('b');
      return s;
    });
    const c = slab.acquire(1).then((s) => {
      granted.push('c');
      return s;
    });
    await new Promise((r) => setTimeout(r, 5));
    // 2 slots are free, but b (first in line) needs 4: c must not overtake it.
    expect(granted).toEqual([]);
    slab.releaseView(slab.view(a[0], 10));
    slab.release(a[1]);
    const sb = await b;
    expect(granted).toEqual(['b']);
    expect(sb.every((s) => !a.slice(2).includes(s))).toBe(true);
    slab.release(a[2]);
    await c;
    expect(granted).toEqual(['b', 'c']);
    // A view of another buffer (a chunk too big for its slot) is not ours to release.
    slab.releaseView(new Uint8Array(8));
    expect(slab.idle).toBe(0);
    expect(() => slab.acquire(7)).toThrow(/6 slots, 7 requested/);
  });

  it('storage waits for the disk only when blocks wait for slots that hold chunks not yet written', async () => {
    const slab = new OutputSlab(1024, 4);
    const a = await slab.acquire(4);
    const next = slab.acquire(2);
    // Still encoding (nothing handed to the store): the encoder is what the next block waits for.
    expect(slab.diskBound).toBe(false);
    const chunks = [slab.view(a[0], 100), slab.view(a[1], 80)];
    slab.markWriting(chunks[0]);
    expect(slab.diskBound).toBe(false);
    slab.markWriting(chunks[1]);
    expect(slab.diskBound).toBe(true);
    slab.releaseView(chunks[0]);
    slab.release(a[2]);
    await next;
    expect(slab.diskBound).toBe(false);
  });
});
