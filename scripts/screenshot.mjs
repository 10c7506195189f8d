// Takes docs/images/page.png for the README: the sidecar on its simulator, the page in headless
// Chromium after 20 s. Usage: node scripts/screenshot.mjs (after npm run build).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spimstream-shot-'));
const port = 18377;
const sidecar = spawn(process.execPath, [path.join(root, 'bin/spimstream.js'), 'run', '--port', String(port), '--out', out], {
  stdio: 'ignore',
});
try {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
  const page = await browser.newPage({ viewport: { width: 1300, height: 860 } });
  await page.goto(`http://127.0.0.1:${port}/`);
  await new Promise((r) => setTimeout(r, 20_000));
  fs.mkdirSync(path.join(root, 'docs/images'), { recursive: true });
  await page.screenshot({ path: path.join(root, 'docs/images/page.png') });
  await browser.close();
} finally {
  sidecar.kill('SIGTERM');
  await new Promise((r) => sidecar.once('exit', r));
  fs.rmSync(out, { recursive: true, force: true });
}
