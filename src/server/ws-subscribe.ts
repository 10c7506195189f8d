/**
 * What a viewer may ask for over the WebSocket: the subscribe message's fields and their checks,
 * each refusal one line naming the field (the hub answers it as an error message).
 */
const SUBSCRIBE_FIELDS = new Set(['type', 'stream', 'fps', 'format', 'window', 'mip', 'volume']);

/** Null for a valid subscribe message, else what is wrong with which field (one line). */
export function subscribeProblem(m: Record<string, unknown>): string | null {
  for (const k of Object.keys(m)) if (!SUBSCRIBE_FIELDS.has(k)) return `unknown field "${k}"; allowed: ${[...SUBSCRIBE_FIELDS].join(', ')}`;
  if (m.stream !== undefined && (typeof m.stream !== 'string' || m.stream.length === 0 || m.stream.length > 200))
    return 'field "stream" must be a stream id such as "GFP/0"';
  if (m.fps !== undefined && !(typeof m.fps === 'number' && Number.isFinite(m.fps) && m.fps > 0))
    return `field "fps" must be a number > 0 (got ${JSON.stringify(m.fps)})`;
  if (m.format !== undefined && !['raw', 'jpeg', 'webp'].includes(m.format as string))
    return `field "format" must be one of raw, jpeg, webp (got ${JSON.stringify(m.format)})`;
  if (m.window !== undefined && m.window !== null) {
    const w = m.window;
    if (
      !Array.isArray(w) ||
      w.length !== 2 ||
      !w.every((v) => typeof v === 'number' && Number.isFinite(v)) ||
      !((w[1] as number) > (w[0] as number))
    )
      return `field "window" must be null or [lo, hi] numbers with hi > lo (got ${JSON.stringify(w)})`;
  }
  if (m.mip !== undefined && typeof m.mip !== 'boolean') return `field "mip" must be true or false (got ${JSON.stringify(m.mip)})`;
  if (m.volume !== undefined && typeof m.volume !== 'boolean')
    return `field "volume" must be true or false (got ${JSON.stringify(m.volume)})`;
  return null;
}
