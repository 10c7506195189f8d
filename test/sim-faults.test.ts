import { describe, expect, it } from 'vitest';
import { faultProblem, faultsFrom, planeState } from '../src/ingest/simulator.js';

describe('simulator faults', () => {
  it('fault_channel limits defocus, saturation and gain to one channel; drift and shift move every channel', () => {
    const f = faultsFrom({ defocus_px: 3, saturate: 1, gain: 2, fault_channel: 1, drift_px_per_t: [0.5, 0], shift_px: [8, -2] });
    const hit = planeState(f, 4, 1);
    const spared = planeState(f, 4, 0);
    expect(hit).toEqual({ dx: 10, dy: -2, blur: 3, gainFactor: 400 });
    expect(spared).toEqual({ dx: 10, dy: -2, blur: 0, gainFactor: 1 });
    // Without fault_channel every channel is hit.
    expect(planeState(faultsFrom({ defocus_px: 3 }), 0, 0).blur).toBe(3);
  });

  it('a malformed shift or an unknown fault is refused in one line naming it', () => {
    expect(faultProblem({ shift_px: [1] })).toBe('sim fault "shift_px" must be [dx, dy] numbers (got [1])');
    expect(faultProblem({ shift: [1, 2] })).toMatch(/^unknown sim fault "shift"; known: .*shift_px.*fault_channel/);
  });
});
