/**
 * A one-node Slurm cluster on loopback for the tests: munged with its own key and socket, slurmctld
 * and slurmd (SlurmUser root, proctrack/linuxproc, task/none, select/cons_tres, no accounting) on
 * free ports, state under a temp dir. Commands reach it with `SLURM_CONF` = `conf` in their
 * environment (`env()`). stop() kills every daemon and removes the directory.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exited, freePort } from './bench-util.js';

export interface Slurm {
  conf: string;
  dir: string;
  /** The environment for sbatch/squeue/snakemake: this cluster's SLURM_CONF. */
  env(): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export async function startSlurm(): Promise<Slurm> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spimstream-slurm-'));
  const munge = path.join(dir, 'munge');
  for (const d of ['state', 'spool', 'munge']) fs.mkdirSync(path.join(dir, d), { mode: 0o700 });
  fs.chmodSync(dir, 0o755); // munged wants its socket's directories searchable
  fs.writeFileSync(path.join(munge, 'munge.key'), randomBytes(1024), { mode: 0o400 });
  const socket = path.join(munge, 'munge.socket');
  const host = os.hostname().split('.')[0];
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const conf = path.join(dir, 'slurm.conf');
  fs.writeFileSync(
    conf,
    [
      'ClusterName=spimstream-test',
      `SlurmctldHost=${host}(127.0.0.1)`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'AuthType=auth/munge',
      `AuthInfo=socket=${socket}`,
      'CredType=cred/munge',
      `StateSaveLocation=${path.join(dir, 'state')}`,
      `SlurmdSpoolDir=${path.join(dir, 'spool')}`,
      `SlurmctldPidFile=${path.join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${path.join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${path.join(dir, 'slurmctld.log')}`,
      `SlurmdLogFile=${path.join(dir, 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'SchedulerType=sched/builtin',
      'ReturnToService=2',
      'MpiDefault=none',
      'SwitchType=switch/none',
      'JobCompType=jobcomp/none',
      'AccountingStorageType=accounting_storage/none',
      'JobAcctGatherType=jobacct_gather/none',
      `NodeName=spimnode NodeHostname=${host} NodeAddr=127.0.0.1 CPUs=${os.cpus().length} RealMemory=1000 State=UNKNOWN`,
      'PartitionName=debug Nodes=spimnode Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, SLURM_CONF: conf });
  const logFd = fs.openSync(path.join(dir, 'daemons.log'), 'a');
  const procs: ChildProcess[] = [];
  const run = (cmd: string, args: string[]) => {
    const p = spawn(cmd, args, { stdio: ['ignore', logFd, logFd], env: env(), cwd: dir });
    procs.push(p);
  };
  const lastWords = () =>
    ['daemons.log', 'slurmctld.log', 'slurmd.log']
      .map((f) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8').slice(-300) : ''))
      .join(' | ');
  const stop = async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map(exited));
    fs.closeSync(logFd);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  run('munged', [
    '-F',
    '-f',
    `--socket=${socket}`,
    `--key-file=${path.join(munge, 'munge.key')}`,
    `--log-file=${path.join(munge, 'munged.log')}`,
    `--pid-file=${path.join(munge, 'munged.pid')}`,
    `--seed-file=${path.join(munge, 'munged.seed')}`,
  ]);
  try {
    await until(() => fs.existsSync(socket), 'munged', lastWords, procs);
    run('slurmctld', ['-D', '-i']);
    run('slurmd', ['-D', '-N', 'spimnode']);
    await until(
      () => /\bidle\b/.test(spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8', env: env() }).stdout ?? ''),
      'the node idle in sinfo',
      lastWords,
      procs,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { conf, dir, env, stop };
}

async function until(cond: () => boolean, what: string, lastWords: () => string, procs: ChildProcess[]): Promise<void> {
  const end = Date.now() + 60_000;
  while (!cond()) {
    const dead = procs.find((p) => p.exitCode !== null);
    if (Date.now() > end || dead)
      throw new Error(`Slurm: ${what} did not come up${dead ? ` (${dead.spawnfile} exited)` : ''}: ${lastWords()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
