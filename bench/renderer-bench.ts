/**
 * The 3-D view's renderer, chosen by measurement: the page's own ray-marching shader (web/volume.js)
 * and niivue (a well-kept WebGL2 volume viewer from npm), in one headless Chromium page through
 * SwiftShader (a CPU renderer: the worst case, an acquisition PC without a GPU), on the same
 * 256 x 256 x 64 uint16 volume of beads on a 600 x 600 canvas: bytes the page loads, time from the
 * data to the first picture (what a new stack costs), and time per redraw while rotating.
 * niivue is installed into a temporary folder by the bench itself (it is not a dependency).
 *
 * Usage: node dist/bench/renderer-bench.js [--rounds 3] [--niivue 0.69.0] [--doc]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { PACKAGE_ROOT } from '../src/package-info.js';
import { machine, table } from './bench-util.js';
import { addSection } from './perf-doc.js';

interface Round {
  ours_first_ms: number;
  ours_mip_draw_ms: number;
  ours_alpha_draw_ms: number;
  niivue_first_ms: number;
  niivue_draw_ms: number;
}

const arg = (n: string, d: string) => {
  const i = process.argv.indexOf(`--${n}`);
  return i >= 0 ? process.argv[i + 1] : d;
};

function installNiivue(dir: string, version: string): string {
  fs.writeFileSync(path.join(dir, 'package.json'), '{"private":true}');
  execFileSync('npm', ['install', `@niivue/niivue@${version}`, '--no-audit', '--no-fund', '--silent'], { cwd: dir, stdio: 'ignore' });
  return path.join(dir, 'node_modules', '@niivue', 'niivue', 'dist', 'niivue.umd.js');
}

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '3'));
  const version = arg('niivue', '0.69.0');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spimstream-renderer-'));
  const www = path.join(dir, 'www');
  fs.mkdirSync(www);
  const umd = installNiivue(dir, version);
  const bytes = { ours: fs.statSync(path.join(PACKAGE_ROOT, 'web', 'volume.js')).size, niivue: fs.statSync(umd).size };
  fs.copyFileSync(umd, path.join(www, 'niivue.umd.js'));
  fs.copyFileSync(path.join(PACKAGE_ROOT, 'web', 'volume.js'), path.join(www, 'volume.js'));
  fs.copyFileSync(path.join(PACKAGE_ROOT, 'bench', 'renderer', 'page.html'), path.join(www, 'page.html'));
  const srv = http
    .createServer((q, r) => {
      const f = path.join(www, path.basename((q.url ?? '').split('?')[0]));
      if (!fs.existsSync(f)) return void r.writeHead(404).end();
      r.writeHead(200, { 'content-type': f.endsWith('.js') ? 'text/javascript' : 'text/html' }).end(fs.readFileSync(f));
    })
    .listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as { port: number }).port;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-first-run', '--disable-background-networking'],
  });
  const runs: Round[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${port}/page.html`);
      await page.waitForFunction(() => (window as unknown as { done?: boolean }).done === true, undefined, { timeout: 600_000 });
      if (errors.length > 0) throw new Error(`the renderer page failed: ${errors.join('; ')}`);
      runs.push(await page.evaluate(() => (window as unknown as { results: Round }).results));
      await page.close();
    }
  } finally {
    await browser.close();
    srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const med = (k: keyof Round) => [...runs.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(runs.length / 2)];
  const rows = [
    {
      renderer: 'spimstream volume.js, maximum intensity',
      'bytes loaded': bytes.ours,
      'first picture ms': med('ours_first_ms'),
      'redraw ms': med('ours_mip_draw_ms'),
    },
    {
      renderer: 'spimstream volume.js, alpha compositing',
      'bytes loaded': bytes.ours,
      'first picture ms': '–',
      'redraw ms': med('ours_alpha_draw_ms'),
    },
    {
      renderer: `niivue ${version} (render view)`,
      'bytes loaded': bytes.niivue,
      'first picture ms': med('niivue_first_ms'),
      'redraw ms': med('niivue_draw_ms'),
    },
  ].map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v) : v])));
  const body = `${table(rows)}\n\nMedian of ${rounds} rounds; niivue's bytes are its one-file bundle (niivue.umd.js).`;
  process.stdout.write(`${JSON.stringify({ bench: 'renderer', machine: machine(), runs })}\n`);
  process.stdout.write(`${body}\n`);
  if (process.argv.includes('--doc'))
    addSection(
      path.join(PACKAGE_ROOT, 'docs'),
      { title: 'The 3-D renderer: own shader and niivue (SwiftShader, 256 × 256 × 64)', body },
      'The 3-D renderer',
    );
}

await main();
