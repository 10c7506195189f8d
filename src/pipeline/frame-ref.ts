/**
 * Where a received frame's pixels live while workers read them: a frame-pool slot, or — when the
 * frame is being stored — its plane in the z-block, read there straight from the ring (one copy
 * instead of two). Readers retain/release; the memory is reused when the last reader is done.
 */
export interface FrameRef {
  buffer: SharedArrayBuffer;
  offset: number;
  retain(): void;
  release(): void;
}
