// A stack's mean focus goes on the plots (the page's history for a new client, and the dashboard's
// gauge) only when every plane was measured and the stack is judged: focus varies along z, so the
// mean of a partly QC-sampled stack is over other planes and showed as a jump in the focus plot.
import { describe, expect, it } from 'vitest';
import { EventBus, type StreamKey } from '../src/pipeline/events.js';
import { QcHistory } from '../src/server/qc-history.js';
import { focusPlottable, type StackQc } from '../src/qc/qc-types.js';

const stream: StreamKey = { camera: 'cam0', channel: 'GFP', view: '0' };

function stack(meanFocus: number, focusPlanes: number, excluded: StackQc['excluded'] = null): StackQc {
  return {
    planes: 8,
    focusPlanes,
    bestFocusZ: 4,
    meanFocus,
    maxSaturatedRatio: 0,
    meanSignal: 100,
    focusRelative: null,
    excluded,
  };
}

describe('focus on the plots', () => {
  it('only stacks with every plane measured and not excluded', () => {
    expect(focusPlottable(stack(0.02, 8))).toBe(true);
    expect(focusPlottable(stack(0.05, 5))).toBe(false);
    expect(focusPlottable(stack(0.05, 0))).toBe(false);
    expect(focusPlottable(stack(0.05, 8, 'saturated'))).toBe(false);
    expect(focusPlottable({ ...stack(0, 0), planes: 0 })).toBe(false);
  });

  it("the page's history keeps the whole stack's focus, not a partly sampled or excluded one's", () => {
    const bus = new EventBus();
    const history = new QcHistory(
      bus,
      () => 0.1,
      () => [],
    );
    bus.emit('stack-qc', { stream, t: 0, qc: stack(0.02, 8) });
    // Within the history's 0.5-s merge interval: a plotted value here would replace the point above.
    bus.emit('stack-qc', { stream, t: 1, qc: stack(0.05, 5) });
    bus.emit('stack-qc', { stream, t: 2, qc: stack(0.07, 8, 'saturated') });
    const focus = history.snapshot()['GFP/0'].focus;
    expect(focus.map((p) => p[1])).toEqual([0.02]);
  });
});
