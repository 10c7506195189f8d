/**
 * Storage metrics: frames received but not stored and why, bytes written, compression, how long a
 * z-block waits to be encoded, the block pool, the disk and whether storing is on.
 */
import { counter, gauge, histogram, type MetricsContext, register } from './metric-kit.js';

export function storageMetrics({ bus, camera, sources, registry }: MetricsContext): void {
  const m = register(registry, {
    unstored: counter(
      'spimstream_frames_unstored_total',
      'Frames received (QC and preview ran) but not written to the store, by reason: block-pool-full (encoding behind), frame-pool-full (QC and encoding behind: frames skipped in the ring before it could overflow), write-backlog (disk behind), index (outside the declared geometry), late (a revisited plane whose chunk was already sealed), encode-failed, or the storage error code (ENOSPC, EDISKGUARD, EROFS, ...).',
      ['camera', 'reason'],
    ),
    bytesOut: counter('spimstream_bytes_written_total', 'Compressed bytes written to the store (shards renamed into place).', ['camera']),
    ratio: gauge('spimstream_compression_ratio', 'Raw bytes / compressed bytes of the chunks stored so far in this acquisition.', [
      'camera',
    ]),
    storeLatency: histogram(
      'spimstream_store_latency_seconds',
      'Time from the first frame of a z-block to its chunks being encoded.',
      ['camera'],
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    ),
    blockPool: gauge(
      'spimstream_block_pool_used_ratio',
      'Fraction of the z-block pool (pipeline.block_pool_mib) in use: near 1, encoding or the disk is behind and storage is about to be shed.',
      ['camera'],
      (g) => g.set({ camera }, sources.blockPoolInUseRatio()),
    ),
    // Labelled by camera so that with storage off there is no series at all (an unlabelled gauge
    // would read 0 and page for a full disk that nobody writes to).
    // Labelled by camera so that with storage off there is no series at all (an unlabelled gauge
    // reads 0, which would page for a full disk that nothing is written to).
    diskFree: gauge('spimstream_disk_free_bytes', 'Free bytes on the file system of the output directory.', ['camera'], (g) => {
      const v = sources.diskFreeBytes();
      if (v !== null) g.set({ camera }, v);
    }),
    diskFullIn: gauge(
      'spimstream_local_disk_full_in_seconds',
      'Forecast: seconds until free space on the output disk falls to storage.min_free_bytes (where storing stops) at the net inflow of the last minute (written minus freed by offload.delete_local); +Inf while free space is not shrinking.',
      ['camera'],
      (g) => {
        const v = sources.diskFullInSeconds();
        if (v !== null) g.set({ camera }, v);
      },
    ),
    storageOk: gauge(
      'spimstream_storage_ok',
      '1 while frames are being stored (or storage is off by configuration, storage.enabled false), 0 after a storage error or when the disk guard stopped storing.',
      ['camera'],
    ),
    active: gauge('spimstream_acquisition_active', '1 while an acquisition is being received.', ['camera']),
  });
  for (const reason of ['block-pool-full', 'frame-pool-full', 'write-backlog']) m.unstored.inc({ camera, reason }, 0);
  m.bytesOut.inc({ camera }, 0);
  m.storageOk.set({ camera }, 1);
  m.active.set({ camera }, 0);
  let raw = 0;
  let stored = 0;
  bus.on('frames-unstored', (e) => m.unstored.inc({ camera, reason: e.reason }, e.count));
  bus.on('shard-written', (e) => m.bytesOut.inc({ camera }, e.bytes));
  bus.on('chunk-stored', (e) => {
    raw += e.rawBytes;
    stored += e.storedBytes;
    if (stored > 0) m.ratio.set({ camera }, raw / stored);
    m.storeLatency.observe({ camera }, e.latencyMs / 1000);
  });
  bus.on('storage-error', () => m.storageOk.set({ camera }, 0));
  bus.on('storage-resumed', () => m.storageOk.set({ camera }, 1));
  bus.on('acquisition-started', (e) => {
    raw = 0;
    stored = 0;
    m.active.set({ camera }, 1);
    // Storage off by configuration is not a storage failure.
    m.storageOk.set({ camera }, e.storePath || !sources.storageEnabled() ? 1 : 0);
  });
  bus.on('acquisition-finished', () => m.active.set({ camera }, 0));
}
