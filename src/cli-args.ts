/**
 * The command line's words: the help texts of `spimstream` and each command, and the flag parser
 * (`--flag VALUE`, `--flag=VALUE`, boolean flags, `-h` and `help CMD`). Usage errors are one line.
 */
import { VERSION } from './package-info.js';

export const HELP = `spimstream ${VERSION} - on-scope QC and lossless OME-Zarr streaming for light-sheet microscopes

Usage:
  spimstream run [--config FILE] [--source sim|shm:PATH] [--out DIR] [--host H] [--port N]
                 [--codec NAME] [--overwrite] [--append] [--json-logs] [--set key.path=VALUE ...]
  spimstream sim --ring PATH [--width N] [--height N] [--z-planes N] [--channels N] [--fps F | --mbps M]
                 [--slots N] [--bit-depth N] [--timepoints N] [--frames N] [--faults JSON] [--seed N]
                 [--precomputed N] [--log-frames FILE] [--unlink] [--stdin-commands]
  spimstream config --print [--config FILE] [run flags]   print the effective configuration
  spimstream grafana [--out DIR] [--config FILE]          write Grafana provisioning + Prometheus rules from the thresholds
  spimstream calibrate --store DIR [--config FILE] [--json] replay a recorded good acquisition, print suggested thresholds
  spimstream help | --version
`;

export const COMMAND_HELP: Record<string, string> = {
  run: `spimstream run: attach to a ring (or start the built-in simulator), run QC, store OME-Zarr, serve the page
  --config FILE        JSON config (see spimstream config --print for every key)
  --source sim|shm:PATH  the built-in simulator (default) or a shared-memory ring written by the acquisition software
  --out DIR            where acquisitions are stored (storage.out)
  --host H --port N    where the page, /metrics, /healthz and /readyz listen
  --codec NAME         storage.codec
  --overwrite | --append  what to do with an existing store of the same name
  --json-logs          one JSON object per log line
  --set key.path=VALUE any config key, e.g. --set qc.thresholds.drift_um=1.5
Defaults: --source sim, --out ./data, --host 127.0.0.1, --port 8080, --codec blosc-zstd
  (every default: spimstream config --print)
Example: spimstream run --source shm:/dev/shm/scope1 --out /data/spim --port 8080
         npm start -- --port 18300 --out /data/spim
`,
  sim: `spimstream sim --ring PATH: write simulated camera frames into a ring (the documented protocol)
  --width N --height N --z-planes N --channels N --slots N --bit-depth N
  --fps F | --mbps M   rate; --timepoints N / --frames N to stop (0 = run until stopped)
  --faults JSON        e.g. {"defocus_from_t": 5, "drift_px_per_t": [0.3, -0.2], "saturate_from_t": 3, "gap_every": 50};
                       "shift_px": [8, 0] bumps the stage, "fault_channel": 0 limits defocus, saturation and gain
                       to channel 0 (an unknown name is refused with the list of them all)
  --seed N --blobs N --offset N --precomputed N --log-frames FILE --unlink --stdin-commands
Defaults: 512 x 512, 16 planes, 2 channels, 40 fps, 64 slots, 16-bit, run until stopped
Example: spimstream sim --ring /dev/shm/scope1 --width 2048 --height 2048 --fps 100 --faults '{"saturate_from_t": 5}'
`,
  config: `spimstream config --print [--config FILE] [run flags]: print the effective configuration as JSON
(the defaults, then FILE, then the flags; every problem is reported, one line each, exit 2)
Example: spimstream config --print --config scope1.json --set qc.thresholds.drift_um=1.5
`,
  calibrate: `spimstream calibrate --store DIR: replay a recorded OME-Zarr acquisition (a good one: in focus, not
drifting) through the sidecar's QC and print what it saw and thresholds that would not have fired on it
  --store DIR          the acquisition's .ome.zarr directory (read only)
  --config FILE --set key.path=VALUE   the configuration to compare with (camera, qc)
  --json               one JSON object instead of the table
Example: spimstream calibrate --store data/20261202_101500_acq1.ome.zarr --config scope1.json
`,
  grafana: `spimstream grafana [--out DIR] [--config FILE] [--set ...]: write the Grafana dashboard, Grafana alert
provisioning and the Prometheus rules generated from the configured thresholds (default DIR: grafana)
Example: spimstream grafana --config scope1.json --out /etc/spimstream/grafana
`,
};

export class UsageError extends Error {}

interface Parsed {
  cmd: string;
  flags: Map<string, string[]>;
}

const BOOLEAN_FLAGS = new Set(['overwrite', 'append', 'json-logs', 'unlink', 'print', 'help', 'version', 'stdin-commands', 'json']);

export function parseArgs(argv: string[]): Parsed {
  // `-h` is `--help`; `spimstream help CMD` is `spimstream CMD --help`.
  argv = argv.map((a) => (a === '-h' ? '--help' : a));
  if ((argv[0] === 'help' || argv[0] === '--help') && argv[1] && !argv[1].startsWith('-')) argv = [argv[1], '--help'];
  const [cmd = 'help', ...rest] = argv;
  const flags = new Map<string, string[]>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}" (see spimstream help)`);
    let name = a.slice(2);
    let value: string;
    const eq = name.indexOf('=');
    if (eq >= 0 && !name.startsWith('set')) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else if (BOOLEAN_FLAGS.has(name)) value = 'true';
    else {
      if (i + 1 >= rest.length) throw new UsageError(`flag --${name} needs a value`);
      value = rest[++i];
    }
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { cmd, flags };
}

/** A flag the command does not take is refused in one line, never ignored (a typo would run with a default). */
export function refuseUnknownFlags(flags: Map<string, string[]>, known: readonly string[]): void {
  for (const k of flags.keys()) if (!known.includes(k)) throw new UsageError(`unknown flag --${k} (see spimstream help)`);
}
