import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { exited, freePort, ROOT, sleep, startTestApp, tmpDir, waitFor } from './helpers.js';
import { buildConfig } from '../src/config/config.js';
import { provisioningFiles } from '../src/observability/provisioning.js';
import { alertRules } from '../src/observability/alert-rules.js';
import { dashboardExpressions } from '../src/observability/dashboard.js';

function promtool(args: string[], input?: string): { code: number | null; out: string } {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8', cwd: ROOT });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('Prometheus and Grafana artefacts, checked with the real Prometheus', () => {
  it('the committed grafana/ folder is exactly what the default thresholds generate', () => {
    for (const [rel, text] of Object.entries(provisioningFiles(buildConfig()))) {
      expect(fs.readFileSync(path.join(ROOT, 'grafana', rel), 'utf8'), `grafana/${rel} is stale: run spimstream grafana`).toBe(text);
    }
  });

  it('promtool check rules and the unit tests of every alert pass', () => {
    const check = promtool(['check', 'rules', 'grafana/prometheus/spimstream-rules.yml']);
    expect(check.code, check.out).toBe(0);
    expect(check.out).toMatch(new RegExp(`SUCCESS: ${alertRules(buildConfig()).length} rules found`));
    const unit = promtool(['test', 'rules', 'test/fixtures/prometheus-rules.test.yml']);
    expect(unit.code, unit.out).toBe(0);
    // every alert has a unit test
    const tests = fs.readFileSync(path.join(ROOT, 'test/fixtures/prometheus-rules.test.yml'), 'utf8');
    for (const r of alertRules(buildConfig())) expect(tests, r.name).toContain(`alertname: ${r.name}`);
  });

  it('a real Prometheus scrapes spimstream with injected faults; every dashboard and rule expression returns data', async () => {
    const out = tmpDir('prom');
    const promPort = await freePort();
    const dest = tmpDir('prom-offload');
    const { app } = await startTestApp({
      source: 'sim',
      storage: { out, levels: 1 },
      offload: { destination: dest }, // levels: the pyramid panel has data
      sim: {
        width: 256,
        height: 256,
        z_planes: 4,
        channels: 2,
        fps: 40,
        blobs: 150,
        faults: { drift_px_per_t: [0.8, -0.5], gap_every: 20 },
      },
    });
    let prom: ChildProcess | null = null;
    try {
      // /metrics lints clean with promtool on a live scrape
      await waitFor(() => app.pipeline.counters.framesReceived > 40, 15000, 'frames');
      const scrape = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      const lint = promtool(['check', 'metrics'], scrape);
      expect(lint.code, lint.out).toBe(0);

      const cfgFile = path.join(out, 'prometheus.yml');
      fs.writeFileSync(
        cfgFile,
        [
          'global: { scrape_interval: 1s, evaluation_interval: 1s }',
          `rule_files: [${JSON.stringify(path.join(ROOT, 'grafana/prometheus/spimstream-rules.yml'))}]`,
          'scrape_configs:',
          `  - job_name: spimstream`,
          `    static_configs: [{ targets: ["127.0.0.1:${app.port}"] }]`,
        ].join('\n'),
      );
      prom = spawn(
        'prometheus',
        [`--config.file=${cfgFile}`, `--storage.tsdb.path=${path.join(out, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let promLog = '';
      prom.stderr?.on('data', (d: Buffer) => {
        promLog += d.toString();
      });
      const api = `http://127.0.0.1:${promPort}/api/v1`;
      const query = async (q: string) => {
        const r = await fetch(`${api}/query?query=${encodeURIComponent(q)}`);
        return (await r.json()) as {
          status: string;
          error?: string;
          data: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
      };
      await waitFor(
        async () => {
          try {
            const r = await query('count_over_time(up{job="spimstream"}[1m])');
            return r.status === 'success' && Number(r.data.result[0]?.value[1] ?? 0) >= 8;
          } catch {
            return false;
          }
        },
        40000,
        `8 scrapes by Prometheus (${promLog.slice(-300)})`,
      );

      const cfg = buildConfig();
      const subst = (e: string) => e.replaceAll('$__rate_interval', '5s').replaceAll('$instance', '.*').replaceAll('$camera', '.*');
      const exprs = new Set<string>();
      const dash = JSON.parse(fs.readFileSync(path.join(ROOT, 'grafana/dashboards/spimstream-overview.json'), 'utf8'));
      for (const e of dashboardExpressions(dash)) exprs.add(subst(e));
      const grafanaAlerts = fs.readFileSync(path.join(ROOT, 'grafana/provisioning/alerting/spimstream-alerts.yaml'), 'utf8');
      for (const m of grafanaAlerts.matchAll(/^\s+expr: (".*")$/gm)) exprs.add(JSON.parse(m[1]) as string);
      const promRules = fs.readFileSync(path.join(ROOT, 'grafana/prometheus/spimstream-rules.yml'), 'utf8');
      const alertExprs = [...promRules.matchAll(/^\s+expr: (".*")$/gm)].map((m) => JSON.parse(m[1]) as string);
      expect(alertExprs.length).toBe(alertRules(cfg).length);
      expect(exprs.size).toBeGreaterThan(20);
      for (const e of exprs) {
        const r = await query(e);
        expect(r.status, `${e}: ${r.error}`).toBe('success');
        expect(r.data.result.length, `no data for ${e}`).toBeGreaterThan(0);
      }
      // Alert expressions all parse; their value parts (above) returned data.
      for (const e of alertExprs) expect((await query(e)).status, e).toBe('success');
      // Drift is reported while the planes are not saturated (a saturated plane's drift is not judged: NaN).
      const drift = await query('max(abs(spimstream_drift_meters{axis="x"}))');
      expect(Number(drift.data.result[0].value[1])).toBeGreaterThan(0);
      // Then the sample saturates (the simulator's live faults replace the previous ones: keep the others).
      const sim = await fetch(`http://127.0.0.1:${app.port}/api/sim`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ drift_px_per_t: [0.8, -0.5], gap_every: 20, saturate: 1 }),
      });
      expect(sim.status).toBe(200);
      await waitFor(
        async () =>
          Number((await query('max(spimstream_stack_saturated_pixels_ratio)')).data.result[0]?.value[1] ?? 0) >
          cfg.qc.thresholds.saturated_ratio,
        20000,
        'Prometheus to see the saturation',
      );
      await waitFor(
        async () => (await query('ALERTS{alertname="SpimstreamSaturation", alertstate=~"pending|firing"}')).data.result.length > 0,
        20000,
        'the saturation alert',
      );

      // Injected faults show in Prometheus: stop the producer, let one more scrape land, compare exactly.
      app.sim?.kill('SIGTERM');
      if (app.sim) await exited(app.sim);
      await sleep(500);
      const gaps = app.pipeline.counters.framesGap;
      expect(gaps).toBeGreaterThan(0);
      await waitFor(
        async () => Number((await query('spimstream_frames_dropped_total{reason="gap"}')).data.result[0]?.value[1]) === gaps,
        10000,
        `Prometheus to see ${gaps} gap drops`,
      );
      const sat = await query('max(spimstream_stack_saturated_pixels_ratio)');
      expect(Number(sat.data.result[0].value[1])).toBeGreaterThan(cfg.qc.thresholds.saturated_ratio);
      const alerts = await query('ALERTS{alertstate=~"pending|firing"}');
      const names = new Set(alerts.data.result.map((r) => r.metric.alertname));
      expect([...names]).toEqual(expect.arrayContaining(['SpimstreamSaturation', 'SpimstreamFramesDropped']));
    } finally {
      prom?.kill('SIGTERM');
      if (prom) await exited(prom);
      await app.stop();
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
