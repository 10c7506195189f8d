// The offload journal: replay after a restart gives the same state, a torn last line is ignored,
// and a week-long run's journal stays bounded (compaction) without forgetting what a restart needs.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JOURNAL_NAME, Journal, type JournalEntry } from '../src/offload/journal.js';
import { tmpDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function dir(name: string): string {
  const d = tmpDir(name);
  dirs.push(d);
  return d;
}

function lines(d: string): number {
  return fs.readFileSync(path.join(d, JOURNAL_NAME), 'utf8').split('\n').filter(Boolean).length;
}

const queued = (f: string, store: string, bytes = 100): JournalEntry => ({ e: 'queued', f, bytes, store, phase: 'data', at: 1 });

describe('offload journal', () => {
  it('replays to the same state after a restart, and ignores a torn last line', () => {
    const d = dir('journal-replay');
    const j = new Journal(d, true);
    j.record([queued('a/c/0', 'a', 10), queued('a/c/1', 'a', 20), queued('a/c/2', 'a', 30)]);
    j.record([
      { e: 'verified', f: 'a/c/0', at: 2 },
      { e: 'verified', f: 'a/c/1', at: 3 },
    ]);
    j.record([{ e: 'deleted', f: 'a/c/0', at: 4 }]);
    j.close();
    fs.appendFileSync(path.join(d, JOURNAL_NAME), '{"e":"verified","f":"a/c/2"'); // cut by a power cut
    const r = new Journal(d, true);
    expect([...r.pending.keys()]).toEqual(['a/c/1', 'a/c/2']);
    expect(r.pending.get('a/c/1')?.verified, 'verified, not yet deleted: deleted at the next start').toBe(true);
    expect(r.pending.get('a/c/2')?.verified, 'the torn line was never acted on').toBe(false);
    expect(r.stores.get('a')).toMatchObject({ files: 3, bytes: 60, verifiedFiles: 2, verifiedBytes: 30, finished: false });
    expect(r.has('a/c/0', 'a'), 'a verified file of a store still acquiring is remembered').toBe(true);
    r.close();
    // Opened again (compacted twice now): still the same, nothing counted twice.
    const r2 = new Journal(d, true);
    expect(r2.stores.get('a')).toMatchObject({ files: 3, bytes: 60, verifiedFiles: 2, verifiedBytes: 30 });
    expect([...r2.pending.keys()]).toEqual(['a/c/1', 'a/c/2']);
    r2.close();
  });

  it('stays bounded over many files: compaction keeps pending files, store totals, and verified names only while a store acquires', () => {
    const d = dir('journal-bounded');
    const j = new Journal(d, false);
    const n = 40_000;
    for (let i = 0; i < n; i += 100) {
      const batch: JournalEntry[] = [];
      for (let k = i; k < i + 100; k++) batch.push(queued(`old/c/${k}`, 'old'));
      j.record(batch);
      j.record(batch.map((b) => ({ e: 'verified', f: (b as { f: string }).f, at: 5 })));
    }
    j.record([
      { e: 'store-finished', store: 'old', at: 6 },
      { e: 'store-complete', store: 'old', at: 7 },
    ]);
    j.record([queued('new/c/0', 'new'), queued('new/c/1', 'new'), { e: 'verified', f: 'new/c/0', at: 8 }]);
    expect(lines(d), 'journal compacted while running, once the store finished').toBeLessThan(100);
    for (let i = 0; i < 20_000; i += 100) {
      const batch: JournalEntry[] = [];
      for (let k = i; k < i + 100; k++) batch.push(queued(`x/c/${k}`, 'x'), { e: 'verified', f: `x/c/${k}`, at: 9 });
      j.record(batch);
    }
    expect(lines(d), "the acquiring store's verified names are kept").toBeGreaterThan(20_000);
    j.record([{ e: 'store-finished', store: 'x', at: 10 }]);
    expect(lines(d), 'compacted when it finished').toBeLessThan(100);
    j.close();
    const r = new Journal(d, false);
    expect(lines(d), 'compacted at open: stores, pending, verified names of the acquiring store').toBeLessThan(10);
    expect(r.stores.get('old')).toMatchObject({ files: n, bytes: 100 * n, verifiedFiles: n, finished: true, complete: true });
    expect(r.pending.size).toBe(1);
    expect(r.pending.has('new/c/1')).toBe(true);
    expect(r.has('new/c/0', 'new')).toBe(true);
    expect(r.has('old/c/5', 'old'), "a finished store's files are not kept").toBe(false);
    r.close();
  });
});
