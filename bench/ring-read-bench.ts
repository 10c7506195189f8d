/**
 * Cost of reading one frame from the /dev/shm ring into a SharedArrayBuffer with positional reads
 * (the reader's three syscalls per frame), against the frame budget at 100 fps.
 */
import fs from 'node:fs';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { RingReader } from '../src/ingest/ring-reader.js';
import type { FrameMeta } from '../src/ingest/ring-layout.js';
import { machine, table, timeIt } from './bench-util.js';

export function ringReadTable(quick: boolean): { rows: Record<string, string | number>[]; ms2048: number } {
  const rows: Record<string, string | number>[] = [];
  let ms2048 = 0;
  for (const size of [512, 2048]) {
    const path = `/dev/shm/spimstream-ringbench-${process.pid}-${size}`;
    const w = RingWriter.create(path, {
      width: size,
      height: size,
      dtype: 'uint16',
      bitDepth: 16,
      slotCount: 4,
      zPlanes: 1,
      channels: 1,
      views: 1,
    });
    const frame = new Uint8Array(size * size * 2).fill(7);
    for (let i = 0; i < 4; i++) w.publish(frame, { cameraCounter: i, timestampNs: 0, t: 0, c: 0, z: 0, view: 0, flags: 0 });
    const r = RingReader.open(path);
    const dst = new Uint8Array(new SharedArrayBuffer(frame.length));
    const meta: FrameMeta = { seq: 0, cameraCounter: 0, timestampNs: 0, t: 0, c: 0, z: 0, view: 0, flags: 0 };
    let n = 0;
    const sec = timeIt(
      () => {
        r.read(n++ % 4, dst, meta);
      },
      quick ? 150 : 600,
    );
    const pub = timeIt(
      () => {
        w.publish(frame, { cameraCounter: 0, timestampNs: 0, t: 0, c: 0, z: 0, view: 0, flags: 0 });
      },
      quick ? 150 : 600,
    );
    r.close();
    w.close();
    fs.rmSync(path, { force: true });
    if (size === 2048) ms2048 = sec * 1000;
    rows.push({
      frame: `${size}x${size} uint16 (${(frame.length / 2 ** 20).toFixed(1)} MiB)`,
      'read ms': sec * 1000,
      'read GB/s': frame.length / sec / 1e9,
      'share of 10 ms': `${(((sec * 1000) / 10) * 100).toFixed(1)}%`,
      'producer write ms (TS writer)': pub * 1000,
    });
  }
  return { rows, ms2048 };
}

function main(): void {
  const { rows, ms2048 } = ringReadTable(process.argv.includes('--quick'));
  process.stdout.write(
    `spimstream ring read bench — ${JSON.stringify(machine())}\n\n${table(rows)}\n\n${JSON.stringify({ bench: 'ring-read', machine: machine(), read_ms_2048: ms2048, rows })}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) main();
