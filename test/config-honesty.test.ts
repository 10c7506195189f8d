/**
 * Attached to another producer's ring without a config, the store must not claim the simulator's
 * channel names, pixel size or time step as facts about that camera.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig, assumedKeys } from '../src/config/config.js';
import { BIN, exited, shmPath, spawnNode, storeDirs, tmpDir, waitFor } from './helpers.js';

const cleanup: string[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) fs.rmSync(f, { recursive: true, force: true });
});

interface Group {
  attributes: {
    ome: {
      multiscales: { axes: { name: string; unit?: string }[]; datasets: { coordinateTransformations: { scale?: number[] }[] }[] }[];
      omero: { channels: { label: string }[] };
    };
    spimstream: { unknown?: string[] };
  };
}

/** Records 2 timepoints from an external simulator process into a sidecar started with `args`; returns the store's group metadata and the sidecar's log. */
async function record(name: string, args: string[]): Promise<{ group: Group; log: string }> {
  const ring = shmPath(name);
  const out = tmpDir(name);
  cleanup.push(ring, `${ring}.lock`, out);
  const side = spawnNode([BIN, 'run', '--source', `shm:${ring}`, '--out', out, '--port', '0', ...args]);
  try {
    await waitFor(() => /listening on/.test(side.output()), 20000, 'listening');
    const sim = spawnNode([
      BIN,
      'sim',
      '--ring',
      ring,
      '--width',
      '64',
      '--height',
      '64',
      '--z-planes',
      '4',
      '--channels',
      '2',
      '--fps',
      '80',
      '--timepoints',
      '2',
    ]);
    expect(await exited(sim), sim.output()).toBe(0);
    await waitFor(() => /acquisition finished/.test(side.output()), 20000, 'the acquisition to finish');
  } finally {
    side.kill('SIGTERM');
    expect(await exited(side)).toBe(0);
  }
  const [store] = storeDirs(out);
  return { group: JSON.parse(fs.readFileSync(path.join(store, 'zarr.json'), 'utf8')) as Group, log: side.output() };
}

describe('producer facts nobody configured', () => {
  it('are named as assumed only for an external ring, and only those no layer set', () => {
    const ext = buildConfig({ source: 'shm:/dev/shm/x' });
    expect(assumedKeys(ext, [{ source: 'shm:/dev/shm/x' }])).toEqual(['channels', 'pixel_size_um', 'time_step_s']);
    expect(assumedKeys(ext, [{ pixel_size_um: { x: 0.1, y: 0.1, z: 1 } }, { time_step_s: 2 }])).toEqual(['channels']);
    expect(assumedKeys(buildConfig({}), [])).toEqual([]);
  });

  it('an external ring without a config: channels ch0, ch1, no physical unit claimed, "unknown" listed, said once in the log', async () => {
    const { group, log } = await record('honest', []);
    const ms = group.attributes.ome.multiscales[0];
    expect(group.attributes.ome.omero.channels.map((c) => c.label)).toEqual(['ch0', 'ch1']);
    expect(ms.axes.map((a) => a.unit ?? null)).toEqual([null, null, null, null, null]);
    expect(ms.datasets[0].coordinateTransformations[0].scale).toEqual([1, 1, 1, 1, 1]);
    expect(group.attributes.spimstream.unknown).toEqual(['channels', 'pixel_size_um', 'time_step_s']);
    expect(log.match(/no config for this producer's channels, pixel_size_um, time_step_s/g)?.length).toBe(1);
    expect(log).not.toMatch(/GFP|mCherry/);
  });

  it('with them configured, the store says them with their units', async () => {
    const dir = tmpDir('honest-cfg');
    cleanup.push(dir);
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        channels: [
          { name: 'DAPI', color: '0000FF' },
          { name: 'RFP', color: 'FF0000' },
        ],
        pixel_size_um: { x: 0.1, y: 0.1, z: 0.5 },
        time_step_s: 30,
      }),
    );
    const { group, log } = await record('honest-cfg', ['--config', file]);
    const ms = group.attributes.ome.multiscales[0];
    expect(group.attributes.ome.omero.channels.map((c) => c.label)).toEqual(['DAPI', 'RFP']);
    expect(ms.axes.map((a) => a.unit ?? null)).toEqual(['second', null, 'micrometer', 'micrometer', 'micrometer']);
    expect(ms.datasets[0].coordinateTransformations[0].scale).toEqual([30, 1, 0.5, 0.1, 0.1]);
    expect(group.attributes.spimstream.unknown).toBeUndefined();
    expect(log).not.toMatch(/no config for this producer/);
  });
});
