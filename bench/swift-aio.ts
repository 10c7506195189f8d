/**
 * OpenStack Swift "all in one" on loopback for the tests and the offload bench: memcached, an account, a container and
 * an object server on one device under a temp dir, and a proxy with s3api + tempauth (user
 * test:tester, key testing) + slo (S3 multipart). Started from Debian's swift-* packages; stop()
 * kills every process and removes the directory.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exited, freePort } from './bench-util.js';

export interface Swift {
  /** The proxy: S3 (s3api) and Swift (tempauth at /auth/v1.0) on one port. */
  endpoint: string;
  dir: string;
  /** Every process of the object store (proxy, account, container, object, memcached), for CPU accounting. */
  pids(): number[];
  /** Kills the proxy only (a server that goes away mid-upload); restartProxy() brings it back. */
  killProxy(): Promise<void>;
  restartProxy(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSwift(): Promise<Swift> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spimstream-swift-'));
  const etc = path.join(dir, 'etc');
  fs.mkdirSync(path.join(dir, 'srv', 'd1'), { recursive: true });
  fs.mkdirSync(etc);
  fs.writeFileSync(
    path.join(etc, 'swift.conf'),
    '[swift-hash]\nswift_hash_path_suffix = spimstream-test\nswift_hash_path_prefix = spimstream-test\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n',
  );
  const ports = {
    account: await freePort(),
    container: await freePort(),
    object: await freePort(),
    proxy: await freePort(),
    memcache: await freePort(),
  };
  const procs: ChildProcess[] = [];
  // Into a file, not a pipe: a parent busy in a synchronous call must not stall Swift on a full pipe.
  const logFile = path.join(dir, 'swift.log');
  const logFd = fs.openSync(logFile, 'a');
  const lastWords = () => fs.readFileSync(logFile, 'utf8').slice(-600);
  const run = (cmd: string, args: string[]): ChildProcess => {
    const p = spawn(cmd, args, { stdio: ['ignore', logFd, logFd], cwd: dir });
    procs.push(p);
    return p;
  };
  for (const kind of ['account', 'container', 'object'] as const) {
    const builder = path.join(etc, `${kind}.builder`);
    for (const args of [['create', '6', '1', '1'], ['add', `r1z1-127.0.0.1:${ports[kind]}/d1`, '1'], ['rebalance']]) {
      const r = spawnSync('swift-ring-builder', [builder, ...args], { encoding: 'utf8' });
      // rebalance exits 1 with a warning on a one-device ring; the ring file is what counts.
      if (r.status !== 0 && args[0] !== 'rebalance') throw new Error(`swift-ring-builder ${args.join(' ')}: ${r.stderr || r.stdout}`);
    }
    fs.writeFileSync(
      path.join(etc, `${kind}-server.conf`),
      [
        '[DEFAULT]',
        `devices = ${path.join(dir, 'srv')}`,
        'mount_check = false',
        'bind_ip = 127.0.0.1',
        `bind_port = ${ports[kind]}`,
        `swift_dir = ${etc}`,
        'workers = 0',
        '[pipeline:main]',
        `pipeline = ${kind}-server`,
        `[app:${kind}-server]`,
        `use = egg:swift#${kind}`,
        '',
      ].join('\n'),
    );
  }
  const filters = ['catch_errors', 'gatekeeper', 'healthcheck', 'proxy_logging', 'listing_formats', 'slo', 'dlo', 'copy'];
  fs.writeFileSync(
    path.join(etc, 'proxy-server.conf'),
    [
      '[DEFAULT]',
      'bind_ip = 127.0.0.1',
      `bind_port = ${ports.proxy}`,
      `swift_dir = ${etc}`,
      'workers = 0',
      '[pipeline:main]',
      'pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth slo dlo copy proxy-logging proxy-server',
      '[app:proxy-server]',
      'use = egg:swift#proxy',
      'account_autocreate = true',
      '[filter:cache]',
      'use = egg:swift#memcache',
      `memcache_servers = 127.0.0.1:${ports.memcache}`,
      '[filter:s3api]',
      'use = egg:swift#s3api',
      '[filter:tempauth]',
      'use = egg:swift#tempauth',
      'user_test_tester = testing .admin',
      ...filters.flatMap((f) => [`[filter:${f.replace('_logging', '-logging')}]`, `use = egg:swift#${f}`]),
      '',
    ].join('\n'),
  );
  run('memcached', ['-l', '127.0.0.1', '-p', String(ports.memcache), '-U', '0', '-u', 'root', '-m', '32']);
  for (const kind of ['account', 'container', 'object']) run(`swift-${kind}-server`, [path.join(etc, `${kind}-server.conf`), '-v']);
  let proxy = run('swift-proxy-server', [path.join(etc, 'proxy-server.conf'), '-v']);
  const endpoint = `http://127.0.0.1:${ports.proxy}`;
  const healthy = async (): Promise<void> => {
    const until = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await fetch(`${endpoint}/healthcheck`)).ok) return;
      } catch {}
      if (Date.now() > until || procs.some((p) => p.exitCode !== null && p !== proxy && p.signalCode === null)) {
        throw new Error(`Swift did not come up on ${endpoint}: ${lastWords()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map(exited));
    fs.closeSync(logFd);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await healthy();
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    endpoint,
    dir,
    pids: () => procs.filter((p) => p.exitCode === null && p.pid !== undefined).map((p) => p.pid as number),
    async killProxy() {
      proxy.kill('SIGKILL');
      await exited(proxy);
    },
    async restartProxy() {
      proxy = run('swift-proxy-server', [path.join(etc, 'proxy-server.conf'), '-v']);
      await healthy();
    },
    stop,
  };
}
