/**
 * The per-stack double buffer behind the stack MIP and the live volume (src/server/stack-buffers.ts):
 * a stack's first plane clears its buffer; a late plane of the previous stack lands in that stack's
 * buffer and clears nothing (the MIP used to restart both stacks on such a plane); a plane older than
 * what its buffer holds is refused.
 */
import { describe, expect, it } from 'vitest';
import { StackBuffers } from '../src/server/stack-buffers.js';

describe('stack buffers by parity', () => {
  it('keeps both stacks whole when a plane of the previous stack arrives late', () => {
    const b = new StackBuffers(8);
    const s4 = b.claim(4);
    expect(s4?.fresh).toBe(true);
    new Uint8Array(s4!.buffer).fill(4);
    const s5 = b.claim(5);
    expect(s5?.fresh).toBe(true);
    expect(s5!.buffer).not.toBe(s4!.buffer);
    new Uint8Array(s5!.buffer).fill(5);
    const late = b.claim(4); // a late plane of stack 4 while stack 5 fills
    expect(late).toEqual({ buffer: s4!.buffer, fresh: false });
    expect(b.claim(5)).toEqual({ buffer: s5!.buffer, fresh: false });
    expect([...new Uint8Array(b.holding(4)!)]).toEqual(Array(8).fill(4));
    expect([...new Uint8Array(b.holding(5)!)]).toEqual(Array(8).fill(5));
  });

  it('a new stack clears the buffer of stack t - 2; older planes are refused, and t - 2 is gone', () => {
    const b = new StackBuffers(4);
    new Uint8Array(b.claim(2)!.buffer).fill(9);
    const s4 = b.claim(4);
    expect(s4?.fresh).toBe(true);
    expect([...new Uint8Array(s4!.buffer)]).toEqual([0, 0, 0, 0]);
    expect(b.claim(2)).toBeNull();
    expect(b.holding(2)).toBeNull();
    expect(b.holding(3)).toBeNull(); // never started
  });
});
