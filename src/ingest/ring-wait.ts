/**
 * Waiting for a valid ring at a path (the producer may start after spimstream, or crash and
 * recreate its ring): retried every 50 ms, each problem said once, in one line.
 */
import { RingReader } from './ring-reader.js';
import { RingFormatError } from './ring-layout.js';

export async function waitForRing(
  ringPath: string,
  seconds: number,
  say: (level: 'info' | 'error', msg: string) => void,
  stopped: () => boolean,
): Promise<RingReader | null> {
  const until = seconds > 0 ? Date.now() + seconds * 1000 : Infinity;
  let told = false;
  for (;;) {
    if (stopped()) return null;
    try {
      return RingReader.open(ringPath);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (e instanceof RingFormatError) {
        // A producer may be creating it right now; a persistently bad ring is reported and retried.
        if (!told) say('error', e.message);
        told = true;
      } else if (code === 'ENOENT') {
        if (!told) say('info', `waiting for ring ${ringPath} to appear`);
        told = true;
      } else {
        throw new Error(`cannot open ring ${ringPath}: ${(e as Error).message}`);
      }
    }
    if (Date.now() > until) throw new Error(`ring ${ringPath} did not appear (or stayed invalid) within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
