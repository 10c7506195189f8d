/**
 * Command line: `spimstream run|sim|config|help`. Errors are one line naming what is wrong;
 * exit codes: 0 ok, 2 bad usage/config/input.
 */
import fs from 'node:fs';
import path from 'node:path';
import { assumedKeys, buildConfig, loadConfigFile, overrideFromString, ConfigError, DEFAULT_CONFIG, type Config } from './config/config.js';
import { publicConfig } from './config/secrets.js';
import { runSimulator } from './ingest/simulator.js';
import { startApp } from './app.js';
import { VERSION } from './package-info.js';
import { writeProvisioning } from './observability/provisioning.js';
import { calibrate } from './qc/calibrate.js';
import { qcParamsFromConfig } from './pipeline/pipeline.js';
import { appendRefusal } from './pipeline/store-factory.js';
import { COMMAND_HELP, HELP, parseArgs, refuseUnknownFlags, UsageError } from './cli-args.js';

const RUN_FLAGS: Record<string, string> = {
  source: 'source',
  out: 'storage.out',
  host: 'server.host',
  port: 'server.port',
  codec: 'storage.codec',
};

export function configFromFlags(flags: Map<string, string[]>): Config {
  return buildConfig(...configLayers(flags));
}

/** `run`'s configuration, with the producer facts nobody set for an external ring. */
function runConfig(flags: Map<string, string[]>): { cfg: Config; assumed: string[] } {
  const layers = configLayers(flags);
  const cfg = buildConfig(...layers);
  const assumed = assumedKeys(cfg, layers);
  // The simulator's channel names are no fact about another camera: ch0, ch1… until configured.
  if (assumed.includes('channels')) cfg.channels = [];
  return { cfg, assumed };
}

/** The config file, then the flags, as layers over the defaults (later wins). */
function configLayers(flags: Map<string, string[]>): unknown[] {
  const layers: unknown[] = [];
  const file = flags.get('config')?.[0];
  if (file) layers.push(loadConfigFile(file));
  for (const [flag, key] of Object.entries(RUN_FLAGS)) {
    const v = flags.get(flag)?.[0];
    if (v !== undefined) layers.push(overrideFromString(key, v));
  }
  if (flags.has('overwrite')) layers.push({ storage: { overwrite: true } });
  if (flags.has('json-logs')) layers.push({ log: { json: true } });
  for (const s of flags.get('set') ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set needs key.path=VALUE, got "${s}"`);
    layers.push(overrideFromString(s.slice(0, eq), s.slice(eq + 1)));
  }
  refuseUnknownFlags(flags, [...Object.keys(RUN_FLAGS), 'config', 'overwrite', 'append', 'json-logs', 'set', 'print']);
  return layers;
}

function num(flags: Map<string, string[]>, name: string, def: number): number {
  const v = flags.get(name)?.[0];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

/** Every flag `spimstream sim` takes (its help lists them). */
const SIM_FLAGS = [
  'ring',
  'width',
  'height',
  'bit-depth',
  'fps',
  'mbps',
  'faults',
  'z-planes',
  'channels',
  'slots',
  'timepoints',
  'seed',
  'blobs',
  'offset',
  'frames',
  'log-frames',
  'precomputed',
  'unlink',
  'stdin-commands',
] as const;

async function cmdSim(flags: Map<string, string[]>): Promise<number> {
  survivePipeErrors();
  refuseUnknownFlags(flags, SIM_FLAGS);
  const ring = flags.get('ring')?.[0];
  if (!ring) throw new UsageError('sim needs --ring PATH (e.g. /dev/shm/spimstream-ring)');
  const d = DEFAULT_CONFIG.sim;
  const width = num(flags, 'width', d.width);
  const height = num(flags, 'height', d.height);
  const bitDepth = num(flags, 'bit-depth', d.bit_depth);
  let fps = num(flags, 'fps', d.fps);
  if (flags.has('mbps')) fps = (num(flags, 'mbps', 0) * 1e6) / (width * height * (bitDepth > 8 ? 2 : 1));
  let faults: Record<string, number | number[]> = {};
  const fj = flags.get('faults')?.[0];
  if (fj) {
    try {
      faults = JSON.parse(fj) as typeof faults;
    } catch {
      throw new UsageError(`--faults must be a JSON object, got ${fj}`);
    }
  }
  // Validate through the config rules so the sim refuses what `run` would refuse.
  const cfg = buildConfig({
    sim: {
      width,
      height,
      bit_depth: bitDepth,
      fps,
      z_planes: num(flags, 'z-planes', d.z_planes),
      channels: num(flags, 'channels', d.channels),
      slots: num(flags, 'slots', d.slots),
      timepoints: num(flags, 'timepoints', d.timepoints),
      seed: num(flags, 'seed', d.seed),
      blobs: num(flags, 'blobs', d.blobs),
      faults,
    },
  });
  const n = await runSimulator({
    ...cfg.sim,
    ring,
    offset: num(flags, 'offset', 100),
    frames: num(flags, 'frames', 0),
    logFrames: flags.get('log-frames')?.[0],
    precomputed: num(flags, 'precomputed', 0),
    unlinkAtExit: flags.has('unlink'),
    commandsOnStdin: flags.has('stdin-commands'),
  });
  process.stderr.write(`sim: published ${n} frames to ${ring}\n`);
  return 0;
}

/**
 * A closed stdout/stderr (`spimstream run | head`, a log collector that went away) must not kill
 * the sidecar: writes fail with EPIPE, logging stops, acquisition and storage go on.
 */
function survivePipeErrors(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    });
  }
}

/**
 * The output folder must be able to be a directory: the path, or the nearest part of it that
 * exists, is a directory. Checked at start, so a typo is one line and exit 2, not a run that
 * stores nothing. (A folder that becomes unusable during a run is a storage error: counted, alerted.)
 */
function checkOutputDir(out: string): void {
  let p = path.resolve(out);
  for (;;) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new UsageError(`--out ${out}: ${p}: ${code}`);
    }
    if (st) {
      if (!st.isDirectory())
        throw new UsageError(
          `--out ${out}: ${p === path.resolve(out) ? 'is a file, not a directory' : `${p} is a file, so the directory cannot be made`}`,
        );
      return;
    }
    const up = path.dirname(p);
    if (up === p) return;
    p = up;
  }
}

async function cmdRun(flags: Map<string, string[]>): Promise<number> {
  survivePipeErrors();
  const { cfg, assumed } = runConfig(flags);
  if (cfg.storage.enabled) checkOutputDir(cfg.storage.out);
  if (flags.has('append') && cfg.storage.overwrite)
    throw new UsageError('--append and --overwrite contradict each other (continue the store, or replace it): give one');
  const refusal = flags.has('append') && cfg.storage.enabled ? appendRefusal(cfg) : null;
  if (refusal) throw new UsageError(refusal);
  // Handlers first: a signal that arrives while the app is still starting must still stop it cleanly.
  let signals = 0;
  let firstSignal: string | null = null;
  let onSignal: (sig: string) => void = (sig) => {
    signals++;
    firstSignal ??= sig;
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  // SIGHUP's default action ends the process: it is taken from the start, and reloads once running.
  let reload: (() => void) | null = null;
  process.on('SIGHUP', () => {
    if (reload) reload();
    else process.stderr.write('spimstream: SIGHUP while starting: ignored (send it again once the page answers)\n');
  });
  const app = await startApp(cfg, { overwrite: cfg.storage.overwrite, append: flags.has('append'), assumed }, () => runConfig(flags).cfg);
  reload = () => {
    app.reload();
  };
  return new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      app.bus.emit('log', { level: 'info', msg: `${sig}: stopping intake, draining workers, flushing store` });
      app.stop().then(
        () => {
          app.bus.emit('log', { level: 'info', msg: 'stopped cleanly' });
          resolve(0);
        },
        (e: unknown) => {
          process.stderr.write(`spimstream: error while stopping: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    onSignal = (sig: string) => {
      signals++;
      if (signals > 1) {
        process.stderr.write(`spimstream: second ${sig}, still flushing; send SIGKILL to abandon unflushed data\n`);
        return;
      }
      stop(sig);
    };
    if (firstSignal) stop(firstSignal);
  });
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { cmd, flags } = parseArgs(argv);
    if (flags.has('help') && COMMAND_HELP[cmd]) {
      process.stdout.write(COMMAND_HELP[cmd]);
      return 0;
    }
    switch (cmd) {
      case 'run':
        return await cmdRun(flags);
      case 'sim':
        return await cmdSim(flags);
      case 'config': {
        const cfg = configFromFlags(flags);
        process.stdout.write(`${JSON.stringify(publicConfig(cfg), null, 2)}\n`);
        return 0;
      }
      case 'grafana': {
        const dir = flags.get('out')?.[0] ?? 'grafana';
        flags.delete('out');
        const cfg = configFromFlags(flags);
        for (const f of writeProvisioning(cfg, dir)) process.stdout.write(`wrote ${dir}/${f}\n`);
        return 0;
      }
      case 'calibrate': {
        const store = flags.get('store')?.[0];
        if (!store) throw new UsageError("calibrate needs --store DIR (an acquisition's .ome.zarr directory)");
        const json = flags.has('json');
        flags.delete('store');
        flags.delete('json');
        const cfg = configFromFlags(flags);
        let cal: Awaited<ReturnType<typeof calibrate>>;
        try {
          cal = await calibrate(store, cfg, qcParamsFromConfig(cfg));
        } catch (e) {
          throw new UsageError(`calibrate: cannot read ${store}: ${(e as Error).message.split('\n')[0]}`);
        }
        if (json) process.stdout.write(`${JSON.stringify(cal)}\n`);
        else {
          const f = (v: number | null, d = 2) => (v === null ? '–' : v.toFixed(d));
          process.stdout.write(
            `store ${store}: t, c, z, y, x = ${cal.shape.join(' x ')}\n\n| channel | stacks | lowest relative focus | drift confidence p5 | drift p99 (px) | stack saturation p99 |\n|---|---|---|---|---|---|\n`,
          );
          for (const s of cal.streams)
            process.stdout.write(
              `| ${s.channel} | ${s.stacks} | ${f(s.focusRelativeMin)} | ${f(s.driftConfidenceP5, 1)} | ${f(s.driftPxP99)} | ${(s.stackSaturationP99 * 100).toFixed(3)} % |\n`,
            );
          for (const n of cal.notes) process.stdout.write(`\nnote: ${n}`);
          process.stdout.write(
            `\n\nsuggested: ${Object.entries(cal.suggested)
              .map(([k, v]) => `--set ${k}=${v}`)
              .join(' ')}\n`,
          );
        }
        return 0;
      }
      case '--version':
      case 'version':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case 'help':
      case '--help':
        process.stdout.write(HELP);
        return 0;
      default:
        throw new UsageError(`unknown command "${cmd}" (see spimstream help)`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      // A configuration with several problems: one line each.
      for (const line of e.message.split('\n')) process.stderr.write(`spimstream: ${line}\n`);
      return 2;
    }
    throw e;
  }
}
