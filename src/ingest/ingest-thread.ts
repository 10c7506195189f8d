/**
 * Entry of the ingest worker thread: reads the ring through the descriptor in workerData (opened and
 * validated by the attach, closed by the main thread once this thread has exited) and runs the
 * ingest loop until the main thread says stop or the ring goes bad. Started by IngestClient.
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { RingReader } from './ring-reader.js';
import { RingIngest } from './ring-ingest.js';
import { SlotPool } from './slot-pool.js';
import { nameThisThread } from './thread-cpu.js';
import type { IngestMessage, IngestStart } from './ingest-protocol.js';

const start = workerData as IngestStart;
nameThisThread('spim-ingest');
const port = parentPort;
if (port && start?.kind === 'spimstream-ingest') {
  const post = (batch: IngestMessage[]): void => port.postMessage(batch);
  let reader: RingReader | null = null;
  try {
    reader = RingReader.onFd(start.ringPath, start.fd);
    if (reader.header.frameBytes !== start.expectedFrameBytes) {
      throw new Error(
        `ring ${start.ringPath}: frame size changed while attaching (${start.expectedFrameBytes} -> ${reader.header.frameBytes} bytes)`,
      );
    }
    // Linux nice values are per thread: raise only this one (needs root or CAP_SYS_NICE; otherwise
    // it stays at the process's priority, said once in the log).
    let priority: number | null = null;
    try {
      os.setPriority(0, start.priority);
      priority = start.priority;
    } catch {
      /* not permitted */
    }
    const ingest = new RingIngest(
      reader,
      new SlotPool(start.pool),
      new Int32Array(start.control),
      new Float64Array(start.status),
      post,
      start.position,
      priority,
    );
    ingest.run();
  } catch (e) {
    post([{ k: 'error', message: e instanceof Error ? e.message : String(e) }]);
  } finally {
    try {
      reader?.close();
    } catch {
      /* already gone */
    }
  }
}
