/** Every command answers --help (exit 0, its own usage); a bad flag is one line and exit 2. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from './helpers.js';

describe('command line', () => {
  for (const cmd of ['run', 'sim', 'config', 'grafana', 'calibrate']) {
    it(`spimstream ${cmd} --help prints its usage and exits 0`, () => {
      const r = spawnSync(process.execPath, [BIN, cmd, '--help'], { encoding: 'utf8', timeout: 60000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.startsWith(`spimstream ${cmd}`)).toBe(true);
    });
  }
  it('an unknown flag is one line naming it, exit 2', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', '--frobnicate', 'x'], { encoding: 'utf8', timeout: 60000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--frobnicate/);
  });
});
