/**
 * Entry of the ingest worker thread: opens the ring named in workerData and runs the ingest loop
 * until the main thread says stop or the ring goes bad. Started by IngestClient.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RingReader } from './ring-reader.js';
import { RingIngest } from './ring-ingest.js';
import { SlotPool } from './slot-pool.js';
import type { IngestMessage, IngestStart } from './ingest-protocol.js';

const start = workerData as IngestStart;
const port = parentPort;
if (port && start?.kind === 'spimstream-ingest') {
  const post = (batch: IngestMessage[]): void => port.postMessage(batch);
  let reader: RingReader | null = null;
  try {
    reader = RingReader.open(start.ringPath);
    if (reader.header.frameBytes !== start.expectedFrameBytes) {
      throw new Error(`ring ${start.ringPath}: frame size changed while attaching (${start.expectedFrameBytes} -> ${reader.header.frameBytes} bytes)`);
    }
    const ingest = new RingIngest(reader, new SlotPool(start.pool), new Int32Array(start.control), new Float64Array(start.status), post, start.position);
    ingest.run();
  } catch (e) {
    post([{ k: 'error', message: e instanceof Error ? e.message : String(e) }]);
  } finally {
    try { reader?.close(); } catch { /* already gone */ }
  }
}
