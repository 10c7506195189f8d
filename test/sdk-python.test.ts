/**
 * The Python producer package as a user gets it: `pip install ./sdk/python` into a fresh venv (a copy
 * of the package, so the clone is not written), then its pytest suite from that venv: the protocol's
 * bytes, one-line refusals of bad frames, and a round trip through the real sidecar read back with
 * tensorstore bit-exact.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from './helpers.js';

const dir = tmpDir('sdk-python');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, SPIMSTREAM_ROOT: ROOT, PYTHONDONTWRITEBYTECODE: '1' };
    const p = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
  });
}

describe('sdk/python', () => {
  it('installs with pip, imports from site-packages, and passes its pytest suite', async () => {
    const venv = path.join(dir, 'venv');
    const pkg = path.join(dir, 'python');
    fs.cpSync(path.join(ROOT, 'sdk', 'python'), pkg, { recursive: true });
    // System site packages: numpy, pytest and tensorstore come from what test-deps.sh installed.
    const mk = await run('python3', ['-m', 'venv', '--system-site-packages', venv], dir);
    expect(mk.code, mk.out).toBe(0);
    const py = path.join(venv, 'bin', 'python');
    const pip = await run(py, ['-m', 'pip', 'install', '-q', '--no-deps', '--disable-pip-version-check', pkg], dir);
    expect(pip.code, pip.out).toBe(0);
    const where = await run(py, ['-c', 'import spimring; print(spimring.__file__)'], '/');
    expect(where.code, where.out).toBe(0);
    expect(where.out.trim().startsWith(`${venv}/lib/`), where.out).toBe(true);
    expect(where.out.trim().endsWith('/site-packages/spimring/__init__.py'), where.out).toBe(true);
    // The suite from the clone, against the installed package (not the source tree).
    const t = await run(py, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', path.join(ROOT, 'sdk', 'python', 'tests')], dir);
    expect(t.code, t.out).toBe(0);
    expect(t.out).toMatch(/\b21 passed\b/);
  }, 240_000);
});
