/**
 * Alerts that reach a person: two sidecars on the simulator, a real Prometheus (scrape and rule
 * evaluation every second) with the generated rules, a real Alertmanager with the generated config,
 * and a webhook receiver here. The rules' `for:` windows are shortened to 2 s so the test takes
 * seconds, not minutes; routing, grouping, inhibition and the texts are the generated ones.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startAlertStack, startReceiver } from '../bench/alert-stack.js';
import { buildConfig } from '../src/config/config.js';
import { ROOT, startTestApp, tmpDir, waitFor } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function amtool(args: string[]): { code: number | null; out: string } {
  const r = spawnSync('amtool', args, { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('Prometheus → Alertmanager → a receiver', () => {
  it('the generated Alertmanager config passes amtool check-config', () => {
    const r = amtool(['check-config', path.join(ROOT, 'grafana/alertmanager/alertmanager.yml')]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/3 inhibit rules/);
    expect(r.out).toMatch(/1 receivers/);
  });

  it('a defocus on one stream of one scope: one grouped notification naming it, with its runbook; it resolves; saturation pages without focus or drift', async () => {
    const dir = tmpDir('alertmanager');
    dirs.push(dir);
    const receiver = await startReceiver();
    const got = receiver.got;
    const cfg = buildConfig({ alerting: { webhook_url: receiver.hook, group_wait_s: 1, group_interval_s: 2, repeat_interval_h: 1 } });
    const sim = (camera: string) =>
      startTestApp({
        source: 'sim',
        camera: { name: camera },
        storage: { enabled: false },
        sim: { width: 128, height: 128, z_planes: 8, channels: 2, fps: 80, blobs: 60 },
      });
    const a = await sim('scopeA');
    const b = await sim('scopeB');
    let stack: Awaited<ReturnType<typeof startAlertStack>> | null = null;
    try {
      stack = await startAlertStack(dir, cfg, [`127.0.0.1:${a.app.port}`, `127.0.0.1:${b.app.port}`], { forSeconds: 2, intervalS: 1 });
      expect(amtool(['check-config', path.join(dir, 'alertmanager.yml')]).code).toBe(0);
      const amPort = stack.amPort;
      const stacks = (rec: typeof a.rec, channel: string) =>
        (rec.events['stack-qc'] ?? []).filter((e) => (e as { stream: { channel: string } }).stream.channel === channel).length;
      const ch0 = cfg.channels[0].name;
      await waitFor(() => stacks(a.rec, ch0) >= 12, 30_000, 'a focus baseline on scopeA');
      const faults = async (body: unknown) => {
        const r = await fetch(`http://127.0.0.1:${a.app.port}/api/sim`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        expect(r.status).toBe(200);
      };
      const named = (name: string, status: string) =>
        got.filter((n) => n.status === status && n.alerts.some((x) => x.labels.alertname === name && x.status === status));

      // 1. Defocus on scopeA's first channel only.
      await faults({ defocus_px: 4, fault_channel: 0 });
      /** On a timeout, what each hop had: the sidecar's verdicts, Prometheus' alerts, the receiver's. */
      const diagnose = async (what: string, wait: Promise<void>) => {
        try {
          await wait;
        } catch (e) {
          const verdicts = (a.rec.events.alert ?? []).map((x) => `${(x as { name: string }).name}:${(x as { active: boolean }).active}`);
          const alerts = (await stack?.query('ALERTS')) ?? [];
          const lastStacks = (a.rec.events['stack-qc'] ?? []).slice(-4).map((x) => {
            const s = x as {
              stream: { channel: string };
              t: number;
              qc: { focusRelative: number | null; focusPlanes: number; planes: number; excluded: unknown };
            };
            return [s.stream.channel, s.t, s.qc.focusRelative, s.qc.focusPlanes, s.qc.planes, s.qc.excluded];
          });
          throw new Error(
            `${(e as Error).message} (${what}); last stacks of A ${JSON.stringify(lastStacks)}; sidecar A alerts ${JSON.stringify(verdicts.slice(-10))}; Prometheus ALERTS ${JSON.stringify(alerts.map((x) => x.metric))}; received ${JSON.stringify(got.map((n) => [n.status, n.groupLabels]))}`,
          );
        }
      };
      await diagnose(
        'focus_lost',
        waitFor(() => named('SpimstreamFocusLost', 'firing').length > 0, 60_000, 'the focus_lost notification'),
      );
      const [fired] = named('SpimstreamFocusLost', 'firing');
      const alert = fired.alerts.find((x) => x.labels.alertname === 'SpimstreamFocusLost');
      expect(fired.groupLabels).toEqual({ alertname: 'SpimstreamFocusLost', instance: `127.0.0.1:${a.app.port}`, camera: 'scopeA' });
      expect(fired.alerts).toHaveLength(1);
      expect(alert?.labels).toMatchObject({ camera: 'scopeA', channel: ch0, view: '0', severity: 'warning' });
      expect(alert?.annotations.summary).toBe(`focus of scopeA ${ch0}/0 is lost`);
      expect(alert?.annotations.description).toMatch(/Best plane now at \d+(\.\d+)?% of the usual focus; fires below \d+%/);
      expect(alert?.annotations.runbook_url).toBe(`http://127.0.0.1:${a.app.port}/runbook#focus_lost`);
      // The link works: the sidecar serves the runbook with that section.
      const runbook = await (await fetch(alert?.annotations.runbook_url ?? '')).text();
      expect(runbook).toMatch(/<section id="focus_lost">/);

      // 2. Focus back: the resolved notification.
      await faults({});
      await waitFor(() => named('SpimstreamFocusLost', 'resolved').length > 0, 60_000, 'the resolved notification');
      expect(named('SpimstreamFocusLost', 'firing')).toHaveLength(1);

      // 3. Saturation of the same stream: its page, and no focus_lost or drift page.
      const before = got.length;
      await faults({ saturate: 1, fault_channel: 0 });
      await waitFor(() => named('SpimstreamSaturation', 'firing').length > 0, 60_000, 'the saturation notification');
      const sat = named('SpimstreamSaturation', 'firing')[0].alerts.find((x) => x.labels.alertname === 'SpimstreamSaturation');
      expect(sat?.labels).toMatchObject({ camera: 'scopeA', channel: ch0, view: '0' });
      expect(sat?.annotations.runbook_url).toMatch(/#saturation$/);
      const later = got.slice(before).flatMap((n) => n.alerts.filter((x) => x.status === 'firing').map((x) => x.labels.alertname));
      expect(later.filter((n) => n === 'SpimstreamFocusLost' || n === 'SpimstreamDrift')).toEqual([]);

      // Nothing from scopeB, ever.
      expect(got.flatMap((n) => n.alerts).filter((x) => x.labels.camera === 'scopeB')).toEqual([]);

      // 4. Inhibition itself, on the same Alertmanager: focus_lost and drift of a saturated stream are
      // held back (both posted as firing), while focus_lost of another stream still pages.
      const stream = { instance: 'scope9:8080', camera: 'scope9', channel: 'GFP', view: '0', job: 'spimstream' };
      const post = (alertname: string, labels: Record<string, string>, severity = 'warning') => ({
        labels: { alertname, severity, ...labels },
        annotations: { summary: alertname },
      });
      const r = await fetch(`http://127.0.0.1:${amPort}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([
          post('SpimstreamSaturation', stream),
          post('SpimstreamFocusLost', stream),
          post('SpimstreamDrift', stream),
          post('SpimstreamFocusLost', { ...stream, channel: 'mCherry' }),
        ]),
      });
      expect(r.status).toBe(200);
      await waitFor(
        () => got.some((n) => n.alerts.some((x) => x.labels.camera === 'scope9' && x.labels.channel === 'mCherry')),
        30_000,
        'the uninhibited focus_lost of scope9',
      );
      const state = (await (await fetch(`http://127.0.0.1:${amPort}/api/v2/alerts?filter=camera%3D%22scope9%22`)).json()) as {
        labels: Record<string, string>;
        status: { state: string; inhibitedBy: string[] };
      }[];
      const of = (name: string, channel: string) => state.find((x) => x.labels.alertname === name && x.labels.channel === channel)?.status;
      expect(of('SpimstreamFocusLost', 'GFP')?.state).toBe('suppressed');
      expect(of('SpimstreamFocusLost', 'GFP')?.inhibitedBy.length).toBe(1);
      expect(of('SpimstreamDrift', 'GFP')?.state).toBe('suppressed');
      expect(of('SpimstreamFocusLost', 'mCherry')?.state).toBe('active');
      const scope9 = got.flatMap((n) => n.alerts).filter((x) => x.labels.camera === 'scope9');
      expect(scope9.filter((x) => x.labels.channel === 'GFP' && x.labels.alertname !== 'SpimstreamSaturation')).toEqual([]);
    } finally {
      await stack?.stop();
      await a.app.stop();
      await b.app.stop();
      await receiver.close();
    }
  }, 240_000);
});
