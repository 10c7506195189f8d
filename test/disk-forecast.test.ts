// local_disk_full_in: free space over the net inflow of the last minute, to the disk guard's margin.
import { describe, expect, it } from 'vitest';
import { DiskForecast } from '../src/qc/disk-forecast.js';
import { fmtDuration } from '../src/qc/alerts.js';

describe('disk full forecast', () => {
  it('free space over the net inflow, to the margin; never while the disk empties or holds; a minute window', () => {
    const f = new DiskForecast();
    // 10 GB free, filling at 100 MB/s, margin 2 GB.
    for (let s = 0; s <= 5; s++) f.sample(s * 1000, 10e9 - s * 100e6);
    expect(f.fullInSeconds(2e9), 'too short a history says nothing').toBe(Infinity);
    for (let s = 6; s <= 30; s++) f.sample(s * 1000, 10e9 - s * 100e6);
    expect(f.inflow()).toBeCloseTo(100e6, 0);
    expect(f.fullInSeconds(2e9)).toBeCloseTo((10e9 - 30 * 100e6 - 2e9) / 100e6, 6);
    // delete_local frees as much as is written: the saw-tooth nets to nothing over the minute.
    const g = new DiskForecast();
    for (let s = 0; s <= 120; s++) g.sample(s * 1000, 5e9 - (s % 10) * 50e6);
    expect(g.fullInSeconds(1e9)).toBeGreaterThan(3600);
    // Only the last minute counts: a fast fill a while ago, steady now.
    const h = new DiskForecast();
    for (let s = 0; s <= 60; s++) h.sample(s * 1000, 8e9 - s * 100e6);
    for (let s = 61; s <= 200; s++) h.sample(s * 1000, 2e9 - 60 * 100e6 + 6e9);
    expect(h.fullInSeconds(1e9)).toBe(Infinity);
    // Below the margin already: 0.
    const k = new DiskForecast();
    for (let s = 0; s <= 20; s++) k.sample(s * 1000, 1e9 - s * 1e6);
    expect(k.fullInSeconds(2e9)).toBe(0);
  });

  it('says durations as a person would', () => {
    expect(fmtDuration(Infinity)).toBe('never');
    expect(fmtDuration(42)).toBe('42 s');
    expect(fmtDuration(720)).toBe('12 min');
    expect(fmtDuration(3900)).toBe('1 h 05 min');
  });
});
