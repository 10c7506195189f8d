/** Process and viewer metrics: build info, preview clients and previews the workers had no time for. */
import { counter, gauge, type MetricsContext, register, SL, streamLabels } from './metric-kit.js';

export function processMetrics({ bus, sources, registry }: MetricsContext, info: Record<string, string>): void {
  const m = register(registry, {
    throttled: counter(
      'spimstream_previews_throttled_total',
      "Previews the viewers' rate asked for that were not rendered because the workers were behind: previews yield first (1 per second per stream then), QC next, storage last.",
      SL,
    ),
    clients: gauge('spimstream_preview_clients', 'Connected preview (WebSocket) clients.', [], (g) => g.set(sources.previewClients())),
    info: gauge('spimstream_build_info', 'Version and codec in use (value is always 1).', Object.keys(info)),
  });
  m.info.set(info, 1);
  bus.on('preview-throttled', (e) => m.throttled.inc(streamLabels(e.stream)));
}
