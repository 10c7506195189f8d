import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RingWriter } from '../src/ingest/ring-writer.js';
import { H, HEADER_BYTES, S, SLOT_HEADER_BYTES } from '../src/ingest/ring-layout.js';
import {
  BIN,
  exited,
  mountFs,
  oneLine,
  openArray,
  readPlane,
  ROOT,
  shmPath,
  sleep,
  spawnNode,
  startTestApp,
  storeDirs,
  tmpDir,
  unmountFs,
  waitFor,
} from './helpers.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});
const rm = (p: string) => cleanup.push(() => fs.rmSync(p, { recursive: true, force: true }));

function cli(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 20000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function rawGet(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function mountTmpfs(dir: string, sizeKb: number, ro = false): () => void {
  fs.mkdirSync(dir, { recursive: true });
  mountFs(dir, { size: `${sizeKb}k`, ro });
  // The mount point and the temporary folder made for it both go.
  return () => {
    unmountFs(dir);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  };
}

describe('configuration and command line', () => {
  const cases: [string, string, RegExp][] = [
    ['unknown key', '{"storage": {"codex": "gzip"}}', /config key "storage.codex" is unknown; allowed keys here: .*codec/],
    ['wrong type', '{"server": {"port": "8080"}}', /config key "server.port": expected number, got string/],
    ['bad enum', '{"storage": {"codec": "snappy"}}', /config key "storage.codec": "snappy" is not one of: blosc-zstd, blosc-lz4/],
    [
      'shard not a multiple',
      '{"storage": {"chunk": [32, 256, 256], "shard": [48, 0, 0]}}',
      /config key "storage.shard": shard \[48,0,0\] must be a multiple of chunk/,
    ],
    ['bad focus measure', '{"qc": {"focus": ["sharpness"]}}', /config key "qc.focus": "sharpness" is not one of: dcts, tenengrad/],
    [
      'out of range',
      '{"camera": {"saturation_level": 70000}}',
      /config key "camera.saturation_level": 70000 must be an integer >= 1 and <= 65535/,
    ],
    ['not JSON', '{ port: 1 ', /is not valid JSON/],
  ];
  for (const [name, text, re] of cases) {
    it(`refuses a config with ${name}, naming the key, in one line, exit 2`, () => {
      const dir = tmpDir('cfg');
      rm(dir);
      const file = path.join(dir, 'c.json');
      fs.writeFileSync(file, text);
      const r = cli(['run', '--config', file]);
      expect(r.code).toBe(2);
      expect(oneLine(r.out)).toMatch(re);
      expect(r.out).not.toMatch(/\n\s+at /);
    });
  }

  it('flags override the file; config --print shows the effective configuration; bad flags are refused', () => {
    const dir = tmpDir('cfg');
    rm(dir);
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ storage: { out: '/data/a' }, server: { port: 9000 } }));
    const r = cli(['config', '--print', '--config', file, '--port', '9100', '--set', 'qc.thresholds.drift_um=5']);
    expect(r.code, r.out).toBe(0);
    const eff = JSON.parse(r.out);
    expect(eff.storage.out).toBe('/data/a');
    expect(eff.server.port).toBe(9100);
    expect(eff.qc.thresholds.drift_um).toBe(5);
    expect(cli(['run', '--prot', '1']).out).toMatch(/unknown flag --prot/);
    expect(cli(['run', '--config', '/nonexistent/x.json']).out).toMatch(/cannot read config file \/nonexistent\/x.json: ENOENT/);
  });
});

describe('security defaults', () => {
  it('binds to 127.0.0.1, never serves outside web/, limits bodies, no stack traces', async () => {
    const { app, cfg } = await startTestApp({ source: 'sim', storage: { enabled: false }, sim: { width: 64, height: 64, fps: 5 } });
    try {
      expect(cfg.server.host).toBe('127.0.0.1');
      expect((app.server.address() as { address: string }).address).toBe('127.0.0.1');
      expect((await rawGet(app.port, '/index.html')).status).toBe(200);
      for (const p of [
        '/../package.json',
        '/%2e%2e/package.json',
        '/%252e%252e/package.json',
        '/..%2fpackage.json',
        '/%2e%2e%2fpackage.json',
        '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
        '/web/../../package.json',
        '/..%5cpackage.json',
        '/%00',
        '/%E0%A4%A',
      ]) {
        const r = await rawGet(app.port, p);
        expect(r.status, p).not.toBe(200);
        expect(r.body, p).not.toMatch(/"name": "spimstream"|root:x:0/);
        expect(r.body, p).not.toMatch(/\n\s+at /);
      }
      const big = await fetch(`http://127.0.0.1:${app.port}/api/metadata`, {
        method: 'POST',
        body: JSON.stringify({ notes: 'x'.repeat(70 * 1024) }),
        headers: { 'content-type': 'application/json' },
      });
      expect(big.status).toBe(413);
      const bad = await fetch(`http://127.0.0.1:${app.port}/api/metadata`, {
        method: 'POST',
        body: '{"user": 1}',
        headers: { 'content-type': 'application/json' },
      });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toEqual({ error: 'metadata field "user" must be a string' });
    } finally {
      await app.stop();
    }
  });

  it('with a token, the WebSocket and the POST endpoints need it', async () => {
    const { app } = await startTestApp({
      source: 'sim',
      storage: { enabled: false },
      sim: { width: 64, height: 64, fps: 5 },
      server: { token: 's3cret' },
    });
    try {
      const noTok = await fetch(`http://127.0.0.1:${app.port}/api/metadata`, {
        method: 'POST',
        body: '{"user":"x"}',
        headers: { 'content-type': 'application/json' },
      });
      expect(noTok.status).toBe(401);
      const ok = await fetch(`http://127.0.0.1:${app.port}/api/metadata`, {
        method: 'POST',
        body: '{"user":"x"}',
        headers: { authorization: 'Bearer s3cret', 'content-type': 'application/json' },
      });
      expect(ok.status).toBe(200);
      const status = (url: string) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.on('unexpected-response', (_q, res) => resolve(String(res.statusCode)));
          ws.on('open', () => {
            ws.close();
            resolve('open');
          });
          ws.on('error', () => undefined);
        });
      expect(await status(`ws://127.0.0.1:${app.port}/ws`)).toBe('401');
      expect(await status(`ws://127.0.0.1:${app.port}/ws?token=s3cret`)).toBe('open');
    } finally {
      await app.stop();
    }
  });

  it('a second instance on the same ring or port is refused clearly', async () => {
    const ring = shmPath('dup');
    rm(ring);
    const { app } = await startTestApp({ source: `shm:${ring}`, storage: { enabled: false } });
    try {
      const second = cli(['run', '--source', `shm:${ring}`, '--port', '0']);
      expect(second.code).toBe(2);
      expect(second.out).toMatch(/spimstream: ring .* is already used by another spimstream \(pid \d+, lock .*\.lock\); stop it first/);
      const samePort = cli(['run', '--source', `shm:${ring}-other`, '--port', String(app.port)]);
      expect(samePort.code).toBe(2);
      expect(samePort.out).toMatch(
        new RegExp(`spimstream: port ${app.port} on 127.0.0.1 is already in use \\(another spimstream\\?\\); choose another with --port`),
      );
    } finally {
      await app.stop();
    }
  });
});

describe('bad input: a clear error, nothing already stored is lost', () => {
  const geom = { width: 64, height: 48, dtype: 'uint16' as const, bitDepth: 16, slotCount: 16, zPlanes: 4, channels: 1, views: 1 };
  const frame = (i: number) => {
    const px = new Uint16Array(64 * 48);
    for (let k = 0; k < px.length; k++) px[k] = 100 + ((k * 7 + i * 13) % 500);
    return px;
  };

  async function produce(w: RingWriter, app: Awaited<ReturnType<typeof startTestApp>>['app'], from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      w.publish(new Uint8Array(frame(i).buffer), {
        cameraCounter: i,
        timestampNs: Date.now() * 1e6,
        t: Math.floor(i / 4),
        c: 0,
        z: i % 4,
        view: 0,
        flags: 0,
      });
      await waitFor(() => app.pipeline.counters.framesReceived > i, 5000, `frame ${i}`);
    }
  }

  async function expectStored(dir: string, upTo: number): Promise<void> {
    const arr = await openArray(dir);
    for (let i = 0; i < upTo; i++) {
      const got = await readPlane(arr, Math.floor(i / 4), 0, i % 4);
      expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(frame(i).buffer)), `frame ${i}`).toBe(0);
    }
  }

  it('ring header corrupted mid-run: detaches naming the field, finalizes the store, stored frames intact', async () => {
    const ring = shmPath('corrupt');
    const out = tmpDir('corrupt');
    rm(ring);
    rm(out);
    const w = RingWriter.create(ring, geom);
    w.startAcquisition();
    const { app } = await startTestApp({ source: `shm:${ring}`, storage: { out, chunk: [4, 64, 64], shard: [4, 0, 0] } });
    const errors: string[] = [];
    app.bus.on('storage-error', (e) => errors.push(e.message));
    try {
      await produce(w, app, 0, 8);
      const fd = fs.openSync(ring, 'r+');
      fs.writeSync(fd, Buffer.from('XPIM'), 0, 4, H.magic);
      fs.closeSync(fd);
      await waitFor(() => errors.length > 0, 5000, 'the corruption to be noticed');
      expect(errors[0]).toMatch(/bad ring .*: magic: expected "SPIMRING", found "XPIMRING"/);
      await waitFor(() => !app.pipeline.status().attached, 5000, 'detach');
    } finally {
      await app.stop();
      w.close();
    }
    await expectStored(storeDirs(out)[0], 8);
  });

  it('a frame whose geometry disagrees with the header is refused naming the slot', async () => {
    const ring = shmPath('geom');
    rm(ring);
    const w = RingWriter.create(ring, geom);
    w.startAcquisition();
    const { app } = await startTestApp({ source: `shm:${ring}`, storage: { enabled: false } });
    const errors: string[] = [];
    app.bus.on('storage-error', (e) => errors.push(e.message));
    try {
      await produce(w, app, 0, 2);
      // a producer bug: the slot header says 32 x 48. Written slot by slot as a producer would
      // (seq_begin, header, seq_end, then write_count): the ingest thread reads concurrently, so
      // the frame must never be visible with the right geometry first.
      w.beginWithoutFinishing(2);
      const slot = HEADER_BYTES + 2 * w.slotStride;
      const fd = fs.openSync(ring, 'r+');
      const u32 = (v: number, at: number) => {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(v);
        fs.writeSync(fd, b, 0, 4, at);
      };
      const u64 = (v: number, at: number) => {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt(v));
        fs.writeSync(fd, b, 0, 8, at);
      };
      u32(6144, slot + S.payloadBytes);
      u32(32, slot + S.width);
      u32(48, slot + S.height);
      u32(2, slot + S.z);
      fs.writeSync(fd, new Uint8Array(frame(2).buffer), 0, 6144, slot + SLOT_HEADER_BYTES);
      u64(3, slot + S.seqEnd);
      u64(3, H.writeCount);
      fs.closeSync(fd);
      await waitFor(() => errors.length > 0, 5000, 'the geometry error');
      expect(errors[0]).toMatch(/bad ring .*: slot 2 geometry: frame 2 says 32x48 \(6144 bytes\), header says 64x48 \(6144 bytes\)/);
    } finally {
      await app.stop();
      w.close();
    }
  });

  it('an output path that is a file: storage refused with a clear error, QC continues, /readyz says why', async () => {
    const dir = tmpDir('file');
    rm(dir);
    const file = path.join(dir, 'not-a-dir');
    fs.writeFileSync(file, 'x');
    const { app, rec } = await startTestApp({ source: 'sim', storage: { out: file }, sim: { width: 64, height: 64, fps: 20 } });
    try {
      await waitFor(() => (rec.events['frame-qc']?.length ?? 0) > 5, 10000, 'QC to run');
      expect(rec.events['storage-error']?.[0]?.message).toMatch(
        /cannot create output directory .*not-a-dir|output path .*not-a-dir is not a directory|a parent of this path is a file/,
      );
      const r = await fetch(`http://127.0.0.1:${app.port}/readyz`);
      expect(r.status).toBe(503);
      expect((await r.json()).storage_error).toMatch(/not-a-dir/);
      expect(app.pipeline.counters.framesUnstored).toBeGreaterThan(0);
      expect(fs.readFileSync(file, 'utf8')).toBe('x');
    } finally {
      await app.stop();
    }
  });

  it('an unwritable (read-only) output directory gets a clear error', async () => {
    const mnt = path.join(tmpDir('ro'), 'mnt');
    cleanup.push(mountTmpfs(mnt, 1024, true));
    const { app, rec } = await startTestApp({
      source: 'sim',
      storage: { out: mnt, min_free_bytes: 0 },
      sim: { width: 64, height: 64, fps: 20 },
    });
    try {
      await waitFor(() => (rec.events['storage-error']?.length ?? 0) > 0, 10000, 'the storage error');
      expect(rec.events['storage-error']![0].message, rec.events['storage-error']![0].message).toMatch(
        /cannot create store .*: the file system is read-only \(EROFS\)/,
      );
    } finally {
      await app.stop();
    }
  });

  it('a full disk: ENOSPC is reported, frames not stored are counted, every shard on disk decodes', async () => {
    const mnt = path.join(tmpDir('full'), 'mnt');
    cleanup.push(mountTmpfs(mnt, 3 * 1024));
    const ring = shmPath('full');
    rm(ring);
    const g = { ...geom, width: 256, height: 256, zPlanes: 4 };
    const w = RingWriter.create(ring, g);
    w.startAcquisition();
    const { app, rec } = await startTestApp({
      source: `shm:${ring}`,
      storage: { out: mnt, min_free_bytes: 0, codec: 'none', chunk: [4, 256, 256], shard: [4, 0, 0] },
    });
    try {
      const px = new Uint16Array(256 * 256);
      let i = 0;
      while ((rec.events['storage-error']?.length ?? 0) === 0 && i < 200) {
        for (let k = 0; k < px.length; k++) px[k] = 100 + ((k + i) % 3000);
        w.publish(new Uint8Array(px.buffer), {
          cameraCounter: i,
          timestampNs: Date.now() * 1e6,
          t: Math.floor(i / 4),
          c: 0,
          z: i % 4,
          view: 0,
          flags: 0,
        });
        i++;
        await waitFor(() => app.pipeline.counters.framesReceived >= i, 5000, `frame ${i}`);
        await sleep(5);
      }
      expect(rec.events['storage-error']?.[0]?.message).toMatch(/cannot (write|update metadata of) .*: the disk is full \(ENOSPC\)/);
      for (let k = 0; k < 8; k++) {
        w.publish(new Uint8Array(px.buffer), {
          cameraCounter: i,
          timestampNs: Date.now() * 1e6,
          t: Math.floor(i / 4),
          c: 0,
          z: i % 4,
          view: 0,
          flags: 0,
        });
        i++;
      }
      await waitFor(() => app.pipeline.counters.framesReceived >= i, 5000, 'frames after the error');
      expect(app.pipeline.counters.framesUnstored).toBeGreaterThan(0);
      // QC kept running for every frame
      await waitFor(() => rec.events['frame-qc']!.length === i, 5000, 'QC of every frame');
    } finally {
      await app.stop();
      w.close();
    }
    const [dir] = storeDirs(mnt);
    const shards = (fs.readdirSync(path.join(dir, '0', 'c'), { recursive: true }) as string[]).filter(
      (f) => !path.basename(f).startsWith('.') && fs.statSync(path.join(dir, '0', 'c', f)).isFile(),
    );
    expect(shards.length).toBeGreaterThan(0);
    const arr = await openArray(dir);
    for (const s of shards) {
      const [t] = s.split(path.sep).map(Number);
      for (let z = 0; z < 4; z++) {
        const plane = await readPlane(arr, t, 0, z);
        expect(plane[0]).toBeGreaterThanOrEqual(100); // a whole, decodable shard
      }
    }
  });

  it('the disk guard stops storing before the disk is full, loudly', async () => {
    const out = tmpDir('guard');
    rm(out);
    const { app, rec } = await startTestApp({
      source: 'sim',
      storage: { out, min_free_bytes: 1e18 },
      sim: { width: 64, height: 64, fps: 20 },
    });
    try {
      await waitFor(() => (rec.events['storage-error']?.length ?? 0) > 0, 10000, 'the disk guard');
      expect(rec.events['storage-error']![0].message).toMatch(
        /disk guard: .* GB free on the output disk .*below storage.min_free_bytes .*storing stopped, QC and preview continue/,
      );
      await waitFor(() => app.pipeline.counters.framesUnstored > 0, 5000, 'unstored frames to be counted');
      const m = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      expect(m).toMatch(/spimstream_storage_ok\{camera="cam0"\} 0/);
      expect(m).toMatch(/spimstream_alert_active\{camera="cam0",channel="",view="",alert="storage"\} 1/);
      // The unstored frames carry the guard's code as their reason.
      expect(m).toMatch(/spimstream_frames_unstored_total\{camera="cam0",reason="EDISKGUARD"\} [1-9]/);
    } finally {
      await app.stop();
    }
  });
});

describe('life cycle', () => {
  it('a SIGHUP while the sidecar is still starting does not end it', async () => {
    const p = spawnNode([BIN, 'run', '--port', '0', '--set', 'storage.enabled=false', '--set', 'sim.width=64', '--set', 'sim.height=64']);
    try {
      // The first log line comes from inside the start-up, before the port listens.
      await waitFor(() => /codec/.test(p.output()), 20000, 'the first log line');
      p.kill('SIGHUP');
      await waitFor(() => /listening on http:\/\/127.0.0.1:(\d+)/.test(p.output()), 20000, 'listening');
      const port = Number(/listening on http:\/\/127.0.0.1:(\d+)/.exec(p.output())![1]);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect(p.exitCode).toBe(null);
      expect(p.output()).toMatch(/SIGHUP while starting: ignored|reload: /);
    } finally {
      p.kill('SIGTERM');
      expect(await exited(p)).toBe(0);
    }
  });

  it('SIGHUP reloads the thresholds from the config file without stopping', async () => {
    const dir = tmpDir('hup');
    rm(dir);
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ storage: { enabled: false }, sim: { width: 64, height: 64, fps: 20 }, qc: { thresholds: { drift_um: 2 } } }),
    );
    const p = spawnNode([BIN, 'run', '--config', file, '--port', '0', '--json-logs']);
    try {
      await waitFor(() => /listening on http:\/\/127.0.0.1:(\d+)/.test(p.output()), 10000, 'listening');
      const port = Number(/listening on http:\/\/127.0.0.1:(\d+)/.exec(p.output())![1]);
      await waitFor(
        async () =>
          ((await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as { counters: { framesReceived: number } }).counters
            .framesReceived > 5,
        10000,
        'frames',
      );
      fs.writeFileSync(
        file,
        JSON.stringify({ storage: { enabled: false }, sim: { width: 64, height: 64, fps: 20 }, qc: { thresholds: { drift_um: 7.5 } } }),
      );
      const before = ((await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as { counters: { framesReceived: number } })
        .counters.framesReceived;
      p.kill('SIGHUP');
      await waitFor(() => /thresholds reloaded/.test(p.output()), 5000, 'reload');
      const cfg = (await (await fetch(`http://127.0.0.1:${port}/api/config`)).json()) as { qc: { thresholds: { drift_um: number } } };
      expect(cfg.qc.thresholds.drift_um).toBe(7.5);
      await sleep(500);
      const after = (
        (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as {
          counters: { framesReceived: number; framesOverrun: number };
        }
      ).counters;
      expect(after.framesReceived).toBeGreaterThan(before);
      expect(after.framesOverrun).toBe(0);
      expect(p.output()).toMatch(/reload: thresholds reloaded \(qc.thresholds.drift_um\)"/);
      // A key that only a restart applies is named as such, not reported as reloaded.
      fs.writeFileSync(
        file,
        JSON.stringify({
          storage: { enabled: false },
          sim: { width: 64, height: 64, fps: 20 },
          qc: { thresholds: { drift_um: 7.5 } },
          preview: { fps: 3 },
        }),
      );
      p.kill('SIGHUP');
      await waitFor(
        () => /reload: no threshold changed; changed but needs a restart to take effect: preview.fps"/.test(p.output()),
        5000,
        'the restart-needed reload line',
      );
    } finally {
      p.kill('SIGTERM');
      await exited(p);
    }
  });
  it('a disk-guard margin below what can wait for the disk is warned about at acquisition start', async () => {
    for (const [min, warned] of [
      [1e6, true],
      [2e9, false],
    ] as const) {
      const out = tmpDir('guard-margin');
      const { app, rec } = await startTestApp({
        source: 'sim',
        storage: { out, min_free_bytes: min },
        sim: { width: 64, height: 64, fps: 20 },
      });
      const said: string[] = [];
      app.bus.on('log', (e) => {
        if (/^storage\.min_free_bytes/.test(e.msg)) said.push(e.msg);
      });
      try {
        await waitFor(() => (rec.events['acquisition-started']?.length ?? 0) > 0, 30_000, 'the acquisition');
      } finally {
        await app.stop();
        rm(out);
      }
      expect(said.length, `min_free_bytes ${min}: ${said.join('; ')}`).toBe(warned ? 1 : 0);
      if (warned) expect(said[0]).toMatch(/below what can wait for the disk \(pipeline\.block_pool_mib, 1\.07 GB\): .*ENOSPC/);
    }
  });
});
