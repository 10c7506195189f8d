/** Every command answers --help (exit 0, its own usage); a bad flag is one line and exit 2. */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, RANGES, buildConfig } from '../src/config/config.js';
import { BIN, oneLine, tmpDir } from './helpers.js';

const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60000 });

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
    expect(oneLine(r.stderr)).toMatch(/--frobnicate/);
    // The simulator too: a typo must not run at a default rate.
    const ring = '/dev/shm/spimstream-test-typo';
    try {
      const sim = cli('sim', '--ring', ring, '--fsp', '100', '--frames', '1');
      expect(sim.status).toBe(2);
      expect(oneLine(sim.stderr)).toBe('spimstream: unknown flag --fsp (see spimstream help)');
      expect(fs.existsSync(ring), 'nothing simulated').toBe(false);
    } finally {
      for (const f of [ring, `${ring}.lock`]) fs.rmSync(f, { force: true });
    }
  });

  it('-h and `help CMD` answer too; --help after other flags prints help instead of running', () => {
    for (const args of [
      ['run', '-h'],
      ['help', 'sim'],
      ['sim', '--ring', '/dev/shm/spimstream-test-helponly', '--help'],
    ]) {
      const r = cli(...args);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/^spimstream (run|sim)/);
      expect(r.stdout).toMatch(/Example: /);
    }
    expect(fs.existsSync('/dev/shm/spimstream-test-helponly'), 'sim --help must not start simulating').toBe(false);
  });

  it('bad values say what was given; every problem of a file is reported at once, one line each', () => {
    const port = cli('run', '--port', 'abc');
    expect(port.status).toBe(2);
    expect(port.stderr.trim()).toBe('spimstream: config key "server.port": "abc" is not a number');
    const dir = tmpDir('badcfg');
    try {
      const file = path.join(dir, 'bad.json');
      fs.writeFileSync(
        file,
        JSON.stringify({ pixel_size_um: { x: -1 }, time_step_s: 0, qc: { drift_bin: 0, thresholds: { focus_drop_ratio: 1.5 } }, bogus: 1 }),
      );
      const r = cli('config', '--print', '--config', file);
      expect(r.status).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(5);
      for (const key of ['pixel_size_um.x', 'time_step_s', 'qc.drift_bin', 'qc.thresholds.focus_drop_ratio', 'bogus']) {
        expect(
          lines.some((l) => l.startsWith(`spimstream: config key "${key}"`)),
          key,
        ).toBe(true);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every numeric config key has a range, and the defaults are inside it', () => {
    const numeric: string[] = [];
    const walk = (o: unknown, p: string) => {
      if (typeof o === 'number') numeric.push(p);
      else if (o && typeof o === 'object' && !Array.isArray(o) && p !== 'sim.faults')
        for (const [k, v] of Object.entries(o)) walk(v, p ? `${p}.${k}` : k);
    };
    walk(DEFAULT_CONFIG, '');
    expect(numeric.filter((k) => !(k in RANGES))).toEqual([]);
    expect(() => buildConfig({})).not.toThrow();
    expect(() => buildConfig({ pixel_size_um: { x: -1 } })).toThrow(/pixel_size_um\.x": -1 must be a number > 0/);
  });

  it('--out that is a file (or under one) is one line and exit 2 at start', () => {
    const dir = tmpDir('outfile');
    try {
      const file = path.join(dir, 'notadir');
      fs.writeFileSync(file, 'x');
      const r = cli('run', '--out', file, '--port', '0');
      expect(r.status).toBe(2);
      expect(r.stderr.trim()).toBe(`spimstream: --out ${file}: is a file, not a directory`);
      const under = cli('run', '--out', path.join(file, 'sub'), '--port', '0');
      expect(under.status).toBe(2);
      expect(under.stderr.trim()).toBe(`spimstream: --out ${path.join(file, 'sub')}: ${file} is a file, so the directory cannot be made`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
