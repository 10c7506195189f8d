/**
 * Security defaults against the real sidecar: another web page in the acquisition PC's browser
 * (cross-site POSTs, DNS rebinding), secrets planted in every place they can be configured and
 * searched for in every output, deliberate network exposure, the viewer cap, and bad API input.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { BIN, ROOT, exited, freePort, oneLine, spawnNode, startTestApp, storeDirs, tmpDir, waitFor } from './helpers.js';
import type { PipelineEvents } from '../src/pipeline/events.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

interface Answer {
  status: number;
  body: string;
}

/** A raw HTTP request: every header as given (fetch would not let a test set Host). */
function request(port: number, method: string, p: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: p,
        method,
        headers: { ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers },
      },
      (res) => {
        let b = '';
        res.on('data', (d: Buffer) => {
          b += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The HTTP status of a WebSocket upgrade ('open' when it succeeded). */
function upgrade(port: number, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers });
    ws.on('unexpected-response', (_q, res) => resolve(String(res.statusCode)));
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('error', () => undefined);
  });
}

const secret = (tag: string) => `${tag}${randomBytes(12).toString('hex')}`;

describe('requests from other web pages', () => {
  it('a cross-site or rebinding request to any write route is refused with 403, logged once, and changes nothing; the page origin still writes', async () => {
    const out = tmpDir('xsite');
    cleanup.push(() => fs.rmSync(out, { recursive: true, force: true }));
    const { app } = await startTestApp({
      source: 'sim',
      storage: { out },
      sim: { width: 64, height: 64, z_planes: 4, fps: 20 },
      server: { allowed_origins: ['https://lims.example.org'] },
    });
    const logs: PipelineEvents['log'][] = [];
    app.bus.on('log', (e) => logs.push(e));
    try {
      await waitFor(() => storeDirs(out).length > 0 && fs.existsSync(path.join(storeDirs(out)[0], 'zarr.json')), 20_000, 'a store');
      const port = app.port;
      const host = `127.0.0.1:${port}`;
      const attempts: [string, Record<string, string>][] = [
        ['text/plain from another origin (no preflight)', { host, origin: 'https://evil.example', 'content-type': 'text/plain' }],
        ['JSON from another origin', { host, origin: 'https://evil.example', 'content-type': 'application/json' }],
        ['JSON from an opaque origin', { host, origin: 'null', 'content-type': 'application/json' }],
        ['form encoding from the page origin', { host, origin: `http://${host}`, 'content-type': 'application/x-www-form-urlencoded' }],
        [
          "DNS rebinding (Host is the attacker's name)",
          { host: `evil.example:${port}`, origin: `http://evil.example:${port}`, 'content-type': 'application/json' },
        ],
        ['DNS rebinding without Origin', { host: `rebind.evil.example:${port}`, 'content-type': 'application/json' }],
      ];
      const routes: [string, string][] = [
        ['/api/metadata', '{"sample":"pwned-by-a-web-page"}'],
        ['/api/sim', '{"saturate":1}'],
        ['/api/reload', '{}'],
      ];
      let refused = 0;
      for (const [route, body] of routes) {
        for (const [what, headers] of attempts) {
          const r = await request(port, 'POST', route, headers, body);
          expect(r.status, `${what} ${route}: ${r.body}`).toBe(403);
          const err = (JSON.parse(r.body) as { error: string }).error;
          expect(oneLine(err)).toMatch(/Content-Type|Origin|Host/);
          refused++;
        }
      }
      expect(refused).toBe(routes.length * attempts.length);
      // Rebinding also cannot read: the config, the status, the page and the socket are refused.
      for (const p of ['/api/config', '/api/status', '/', '/metrics'])
        expect((await request(port, 'GET', p, { host: `evil.example:${port}` })).status, p).toBe(403);
      expect(await upgrade(port, { host: `evil.example:${port}` })).toBe('403');
      expect(await upgrade(port, { origin: 'https://evil.example' })).toBe('403');
      expect(await upgrade(port, { origin: `http://${host}` })).toBe('open');
      // Nothing changed: the metadata, the store's zarr.json, the simulator (no saturation).
      const md = JSON.parse((await request(port, 'GET', '/api/metadata', { host })).body) as Record<string, string>;
      expect(md.sample).toBe('');
      const store = storeDirs(out)[0];
      expect(fs.readFileSync(path.join(store, 'zarr.json'), 'utf8')).not.toContain('pwned');
      // Logged at most once a minute: one line for all of the refusals above.
      const lines = logs.filter((l) => l.msg.startsWith('refused '));
      expect(lines.length, JSON.stringify(lines)).toBe(1);
      expect(lines[0].level).toBe('warn');
      // The page's own origin, localhost, and an allowed origin do write.
      for (const [origin, sample] of [
        [`http://${host}`, 'from-the-page'],
        ['https://lims.example.org', 'from-the-lims'],
      ] as const) {
        const ok = await request(
          port,
          'POST',
          '/api/metadata',
          { host, origin, 'content-type': 'application/json; charset=utf-8' },
          JSON.stringify({ sample }),
        );
        expect(ok.status, ok.body).toBe(200);
        await waitFor(() => fs.readFileSync(path.join(store, 'zarr.json'), 'utf8').includes(sample), 10_000, `${sample} in zarr.json`);
      }
      expect((await request(port, 'GET', '/healthz', { host: `localhost:${port}` })).status).toBe(200);
    } finally {
      await app.stop();
    }
  });

  it('bad API input gets 400 (HTTP) or an error message (WebSocket) naming the field', async () => {
    const { app } = await startTestApp({ source: 'sim', storage: { enabled: false }, sim: { width: 64, height: 64, fps: 10 } });
    try {
      const post = async (route: string, body: string) => {
        const r = await request(app.port, 'POST', route, { host: `127.0.0.1:${app.port}`, 'content-type': 'application/json' }, body);
        return { status: r.status, error: (JSON.parse(r.body) as { error?: string }).error ?? '' };
      };
      const cases: [string, string, RegExp][] = [
        ['/api/sim', '{"saturat":1}', /unknown sim fault "saturat"; known: .*saturate/],
        ['/api/sim', '{"saturate":"yes"}', /sim fault "saturate" must be a number \(got "yes"\)/],
        ['/api/sim', '{"drift_px_per_t":[1]}', /sim fault "drift_px_per_t" must be \[dx, dy\] numbers/],
        ['/api/sim', '[1]', /sim faults must be a JSON object/],
        ['/api/metadata', '{"sampel":"x"}', /unknown metadata field "sampel"; allowed: .*sample/],
        ['/api/metadata', JSON.stringify({ notes: 'n'.repeat(2001) }), /metadata field "notes" is longer than 2000 characters/],
        ['/api/metadata', '{"user":', /request body is not valid JSON/],
      ];
      for (const [route, body, re] of cases) {
        const r = await post(route, body);
        expect(r.status, `${route} ${body}`).toBe(400);
        expect(r.error).toMatch(re);
      }
      expect((await post('/api/sim', '{"saturate":0}')).status).toBe(200);
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`);
      const errors: string[] = [];
      ws.on('message', (d: Buffer, bin: boolean) => {
        if (bin) return;
        const m = JSON.parse(d.toString()) as { type: string; message?: string };
        if (m.type === 'error') errors.push(m.message ?? '');
      });
      await new Promise((r) => ws.once('open', r));
      const bad: [Record<string, unknown>, RegExp][] = [
        [{ fps: 'fast' }, /subscribe: field "fps" must be a number > 0 \(got "fast"\)/],
        [{ fps: -1 }, /field "fps" must be a number > 0/],
        [{ format: 'gif' }, /field "format" must be one of raw, jpeg, webp \(got "gif"\)/],
        [{ window: [500, 100] }, /field "window" must be null or \[lo, hi\]/],
        [{ mip: 'yes' }, /field "mip" must be true or false/],
        [{ stream: 7 }, /field "stream" must be a stream id/],
        [{ colour: 'red' }, /unknown field "colour"/],
      ];
      for (const [m] of bad) ws.send(JSON.stringify({ type: 'subscribe', ...m }));
      await waitFor(() => errors.length >= bad.length, 10_000, 'an error for each bad subscribe');
      expect(errors.length).toBe(bad.length);
      for (const [i, [, re]] of bad.entries()) expect(errors[i]).toMatch(re);
      ws.close();
    } finally {
      await app.stop();
    }
  });

  it('caps the number of viewers: a further one is closed with 1013 and a log line', async () => {
    const { app } = await startTestApp({
      source: 'sim',
      storage: { enabled: false },
      sim: { width: 64, height: 64, fps: 10 },
      server: { max_clients: 2 },
    });
    const logs: string[] = [];
    app.bus.on('log', (e) => logs.push(e.msg));
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`);
        await new Promise((r) => ws.once('open', r));
        open.push(ws);
      }
      await waitFor(() => app.hub.count === 2, 5000, 'two viewers');
      const third = new WebSocket(`ws://127.0.0.1:${app.port}/ws`);
      const closed = await new Promise<{ code: number; reason: string }>((r) =>
        third.once('close', (code, reason) => r({ code, reason: reason.toString() })),
      );
      expect(closed.code).toBe(1013);
      expect(closed.reason).toMatch(/server.max_clients 2/);
      expect(app.hub.count).toBe(2);
      expect(logs.filter((l) => /refused a viewer: server.max_clients \(2\)/.test(l)).length).toBe(1);
      // Once one leaves, a new viewer is taken.
      open.shift()!.close();
      await waitFor(() => app.hub.count === 1, 5000, 'one viewer left');
      const again = new WebSocket(`ws://127.0.0.1:${app.port}/ws`);
      await new Promise((r) => again.once('open', r));
      open.push(again);
    } finally {
      for (const ws of open) ws.close();
      await app.stop();
    }
  });
});

describe('network exposure is deliberate', () => {
  it('--host beyond loopback without a token is refused in one line; with insecure_no_token it starts and warns', async () => {
    const r = spawnSync(process.execPath, [BIN, 'run', '--host', '0.0.0.0', '--port', '0', '--set', 'storage.enabled=false'], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(oneLine(`${r.stdout}${r.stderr}`)).toMatch(
      /^spimstream: config key "server.host": "0.0.0.0" is reachable from the network: set server.token/,
    );
    const withToken = spawnSync(process.execPath, [BIN, 'config', '--print', '--host', '0.0.0.0', '--set', 'server.token=abcdefgh'], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 20_000,
    });
    expect(withToken.status, withToken.stderr).toBe(0);
    expect(JSON.parse(withToken.stdout).server.token).toBe('***');
    const p = spawnNode([
      BIN,
      'run',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--set',
      'storage.enabled=false',
      '--set',
      'server.insecure_no_token=true',
      '--set',
      'sim.width=64',
      '--set',
      'sim.height=64',
    ]);
    try {
      await waitFor(() => /listening on http:\/\/0.0.0.0:\d+/.test(p.output()), 20_000, 'listening');
      expect(p.output()).toMatch(/WARN +listening on 0.0.0.0 without a token \(server.insecure_no_token\)/);
    } finally {
      p.kill('SIGTERM');
      expect(await exited(p)).toBe(0);
    }
  });
});

describe('secrets never leave', () => {
  it('a token, credentials in an rclone connection string and an rclone config file appear in no response, message, log line, store or offloaded file', async () => {
    const dir = tmpDir('secrets');
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const token = secret('tok');
    const davPass = secret('dav');
    const obscured = spawnSync('rclone', ['obscure', davPass], { encoding: 'utf8' }).stdout.trim();
    expect(obscured.length).toBeGreaterThan(10);
    const akid = secret('AKID');
    const sak = secret('sak');
    const rcloneConf = path.join(dir, 'rclone.conf');
    fs.writeFileSync(
      rcloneConf,
      `[archive]\ntype = s3\nprovider = Other\naccess_key_id = ${akid}\nsecret_access_key = ${sak}\nendpoint = http://127.0.0.1:9\n`,
    );
    const planted = [token, davPass, obscured, akid, sak];
    const davPort = await freePort();
    const davDir = path.join(dir, 'dav');
    fs.mkdirSync(davDir);
    const out = path.join(dir, 'data');
    const destination = `:webdav,url='http://127.0.0.1:${davPort}',user=spim,pass=${obscured}:archive`;
    const cfgFile = path.join(dir, 'config.json');
    fs.writeFileSync(
      cfgFile,
      JSON.stringify({
        sim: { width: 64, height: 64, z_planes: 4, channels: 1, fps: 40, timepoints: 3 },
        storage: { out, chunk: [4, 64, 64], shard: [4, 0, 0] },
        server: { token },
        offload: { destination, rclone_config: rcloneConf, retries: 0 },
      }),
    );
    // The sidecar starts while the destination is down: its errors (which echo the destination) are logged too.
    const p = spawnNode([BIN, 'run', '--config', cfgFile, '--port', '0']);
    let dav: ChildProcess | null = null;
    cleanup.push(() => {
      if (p.exitCode === null) p.kill('SIGKILL');
      if (dav && dav.exitCode === null) dav.kill('SIGKILL');
    });
    await waitFor(() => /listening on http:\/\/127.0.0.1:(\d+)/.test(p.output()), 20_000, 'listening');
    const port = Number(/listening on http:\/\/127.0.0.1:(\d+)/.exec(p.output())![1]);
    await waitFor(
      () => /offload destination .* cannot be reached|offload to .* failed/.test(p.output()),
      60_000,
      'an offload failure while the destination is down',
    );
    dav = spawn('rclone', ['serve', 'webdav', davDir, '--addr', `127.0.0.1:${davPort}`, '--user', 'spim', '--pass', davPass], {
      stdio: 'ignore',
    });
    await waitFor(() => /offload complete/.test(p.output()), 120_000, 'the offload to complete');
    // Every HTTP answer, with the token where one is needed.
    const auth = { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}` };
    const answers: string[] = [];
    for (const route of ['/', '/app.js', '/api/config', '/api/status', '/api/metadata', '/metrics', '/healthz', '/readyz']) {
      const r = await request(port, 'GET', route, auth);
      expect(r.status, route).toBe(200);
      answers.push(r.body);
    }
    const cfg = JSON.parse(answers[2]) as { server: { token: string }; offload: { destination: string; rclone_config: string } };
    expect(cfg.server.token).toBe('***');
    expect(cfg.offload.destination).toBe(`:webdav,url='http://127.0.0.1:${davPort}',user=spim,pass=***:archive`);
    expect(cfg.offload.rclone_config).toBe(rcloneConf);
    // Every WebSocket message a viewer gets in its first second or so (hello, history, status).
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token}`);
    const messages: string[] = [];
    ws.on('message', (d: Buffer, bin: boolean) => {
      if (!bin) messages.push(d.toString());
    });
    await waitFor(() => messages.some((m) => m.includes('"type":"status"')), 10_000, 'a status message');
    ws.close();
    const printed = spawnSync(process.execPath, [BIN, 'config', '--print', '--config', cfgFile], { encoding: 'utf8', cwd: ROOT }).stdout;
    p.kill('SIGTERM');
    expect(await exited(p)).toBe(0);
    const files = (root: string): string[] =>
      fs
        .readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.join(e.parentPath, e.name));
    const stored = files(out);
    const offloaded = files(davDir);
    expect(stored.some((f) => f.endsWith('spimstream-manifest.json'))).toBe(true);
    expect(offloaded.some((f) => f.endsWith('spimstream-manifest.json'))).toBe(true);
    expect(offloaded.some((f) => f.endsWith('qc-report.html'))).toBe(true);
    const manifest = JSON.parse(fs.readFileSync(stored.find((f) => f.endsWith('spimstream-manifest.json'))!, 'utf8')) as {
      config: { offload: { destination: string } };
    };
    expect(manifest.config.offload.destination).toMatch(/pass=\*\*\*:archive$/);
    const outputs: [string, string][] = [
      ['log', p.output()],
      ['config --print', printed],
      ...answers.map((a, i): [string, string] => [`HTTP answer ${i}`, a]),
      ...messages.map((m, i): [string, string] => [`WebSocket message ${i}`, m]),
      ...[...stored, ...offloaded].map((f): [string, string] => [f, fs.readFileSync(f).toString('latin1')]),
    ];
    expect(outputs.length).toBeGreaterThan(20);
    // The search itself can fail: the planted values are where the test put them.
    expect(fs.readFileSync(rcloneConf, 'utf8')).toContain(sak);
    expect(fs.readFileSync(cfgFile, 'utf8')).toContain(obscured);
    for (const [where, text] of outputs)
      for (const s of planted) expect(text.includes(s), `${where} contains a planted secret (${s.slice(0, 4)}…)`).toBe(false);
    expect(p.output()).toMatch(
      /offload destination :webdav,url='http:\/\/127.0.0.1:\d+',user=spim,pass=\*\*\*:archive cannot be reached|offload to :webdav.*pass=\*\*\*/,
    );
  }, 240_000);
});
