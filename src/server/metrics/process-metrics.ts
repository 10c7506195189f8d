/** Process and viewer metrics: build info, preview clients and previews the workers had no time for. */
import { counter, gauge, type MetricsContext, register, SL, streamLabels } from './metric-kit.js';

export function processMetrics({ bus, sources, registry }: MetricsContext, info: Record<string, string>): void {
  const m = register(registry, {
    throttled: counter(
      'spimstream_previews_throttled_total',
      "Previews the viewers' rate asked for that were not rendered because the workers were behind: previews yield first (1 per second per stream then), QC next, storage last.",
      SL,
    ),
    skipped: counter(
      'spimstream_viewer_messages_skipped_total',
      'Messages a viewer did not get, by reason: backlog (its send buffer held over 1 MiB: a slow browser or link gets fewer, never a stall), volume-budget (a live volume beyond preview.volume_bytes_per_second for that viewer). Data is never affected.',
      ['reason'],
      (c) => {
        c.reset();
        for (const [reason, n] of Object.entries(sources.viewerMessagesSkipped())) c.inc({ reason }, n);
      },
    ),
    clients: gauge('spimstream_preview_clients', 'Connected preview (WebSocket) clients.', [], (g) => g.set(sources.previewClients())),
    info: gauge('spimstream_build_info', 'Version and codec in use (value is always 1).', Object.keys(info)),
  });
  m.info.set(info, 1);
  bus.on('preview-throttled', (e) => m.throttled.inc(streamLabels(e.stream)));
}
