/**
 * The alert path a facility runs, on loopback: a webhook receiver (what a person's inbox stands for),
 * a real Prometheus scraping the given sidecars with the generated rules, and a real Alertmanager
 * with the generated config. Used by test/alertmanager.test.ts and bench/notify-bench.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Config } from '../src/config/config.js';
import { provisioningFiles } from '../src/observability/provisioning.js';
import { freePort } from './bench-util.js';

export interface Notification {
  status: 'firing' | 'resolved';
  groupLabels: Record<string, string>;
  alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string>; startsAt: string }[];
  /** When the receiver got it (ms since the epoch). */
  receivedAt: number;
}

export interface Receiver {
  hook: string;
  got: Notification[];
  close(): Promise<void>;
}

/** An HTTP server that keeps every webhook body Alertmanager posts. */
export async function startReceiver(): Promise<Receiver> {
  const got: Notification[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      got.push({ ...(JSON.parse(body) as Omit<Notification, 'receivedAt'>), receivedAt: Date.now() });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    hook: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface AlertStack {
  promPort: number;
  amPort: number;
  /** An instant PromQL query ([] while Prometheus is not answering). */
  query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stop(): Promise<void>;
}

/**
 * Starts Alertmanager and Prometheus (scrape and evaluation every `intervalS`) on the generated
 * files of `cfg`. `forSeconds` replaces every non-zero `for:` of the rules (null: as generated).
 */
export async function startAlertStack(
  dir: string,
  cfg: Config,
  targets: string[],
  o: { forSeconds: number | null; intervalS: number },
): Promise<AlertStack> {
  const files = provisioningFiles(cfg);
  const rules = path.join(dir, 'rules.yml');
  const text = files['prometheus/spimstream-rules.yml'];
  fs.writeFileSync(rules, o.forSeconds === null ? text : text.replace(/^(\s+for: )"?[1-9]\d*[sm]"?$/gm, `$1${o.forSeconds}s`));
  const amConfig = path.join(dir, 'alertmanager.yml');
  fs.writeFileSync(amConfig, files['alertmanager/alertmanager.yml']);
  const amPort = await freePort();
  const promPort = await freePort();
  const procs: ChildProcess[] = [];
  const logs: string[] = [];
  const start = (cmd: string, args: string[]) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr?.on('data', (d: Buffer) => {
      logs.push(d.toString());
      if (logs.length > 200) logs.shift();
    });
    procs.push(p);
  };
  // No cluster: one Alertmanager, no gossip port to collide with.
  start('prometheus-alertmanager', [
    `--config.file=${amConfig}`,
    `--storage.path=${path.join(dir, 'am')}`,
    `--web.listen-address=127.0.0.1:${amPort}`,
    '--cluster.listen-address=',
  ]);
  const promConfig = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    promConfig,
    [
      `global: { scrape_interval: ${o.intervalS}s, evaluation_interval: ${o.intervalS}s }`,
      `rule_files: [${JSON.stringify(rules)}]`,
      `alerting: { alertmanagers: [{ static_configs: [{ targets: ["127.0.0.1:${amPort}"] }] }] }`,
      'scrape_configs:',
      '  - job_name: spimstream',
      `    static_configs: [{ targets: ${JSON.stringify(targets)} }]`,
    ].join('\n'),
  );
  start('prometheus', [
    `--config.file=${promConfig}`,
    `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
  ]);
  const query = async (q: string) => {
    try {
      const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
      return ((await r.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
    } catch {
      return [];
    }
  };
  const stop = async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : null)));
  };
  // Both up and Prometheus scraping every target, or a one-line error with their last words.
  const until = Date.now() + 30_000;
  for (;;) {
    const up = await query('up{job="spimstream"} == 1');
    let amReady = false;
    try {
      amReady = (await fetch(`http://127.0.0.1:${amPort}/-/ready`)).ok;
    } catch {}
    if (up.length === targets.length && amReady) break;
    if (Date.now() > until || procs.some((p) => p.exitCode !== null)) {
      await stop();
      throw new Error(`Prometheus/Alertmanager did not come up scraping ${targets.join(', ')}: ${logs.join('').slice(-400)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { promPort, amPort, query, stop };
}
