/**
 * Where a received frame's pixels live while workers read them: its frame-pool slot (intake.ts).
 * Readers retain/release; the slot is reused when the last reader is done.
 */
export interface FrameRef {
  buffer: SharedArrayBuffer;
  offset: number;
  retain(): void;
  release(): void;
}
