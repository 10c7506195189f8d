/** Pyramid metrics: worker seconds per level and z-blocks of a level that could not be built. */
import { counter, type MetricsContext, register } from './metric-kit.js';

export function pyramidMetrics({ bus, camera, registry }: MetricsContext): void {
  const m = register(registry, {
    seconds: counter(
      'spimstream_pyramid_seconds_total',
      'Worker seconds spent building each pyramid level from the level above (the reduce jobs; the first 2 x 2 step rides in the frame tasks).',
      ['camera', 'level'],
    ),
    failed: counter(
      'spimstream_pyramid_failures_total',
      'Pyramid z-blocks that could not be built or encoded (that part of the level stays fill value; level 0 is unaffected), by level.',
      ['camera', 'level'],
    ),
  });
  bus.on('pyramid-block', (e) => {
    // A level's failure series exists (at 0) from its first block, so a rate or alert has data.
    m.failed.inc({ camera, level: String(e.level) }, e.ok ? 0 : 1);
    if (e.ok) m.seconds.inc({ camera, level: String(e.level) }, e.seconds);
  });
}
