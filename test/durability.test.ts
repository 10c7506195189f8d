/**
 * Power-loss safety, observed on the real syscalls (strace): every file renamed into a store was
 * fdatasync'ed before its rename, and its directory fsync'ed after it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, exited, openArray, tmpDir, waitFor } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { force: true, recursive: true });
});

interface Call {
  pid: string;
  name: string;
  args: string;
  ok: boolean;
}

/** strace -f lines as completed calls in completion order ("unfinished ... resumed" joined per pid). */
function completedCalls(trace: string): Call[] {
  const open = new Map<string, { name: string; args: string }>();
  const calls: Call[] = [];
  for (const line of trace.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, rest] = m;
    const un = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest);
    if (un) {
      open.set(pid, { name: un[1], args: un[2] });
      continue;
    }
    const res = /^<\.\.\. (\w+) resumed>(.*)\)\s+= (-?\d+)/.exec(rest);
    if (res) {
      const o = open.get(pid);
      open.delete(pid);
      if (o) calls.push({ pid, name: o.name, args: o.args + res[2], ok: res[3] === '0' });
      continue;
    }
    const full = /^(\w+)\((.*)\)\s+= (-?\d+)/.exec(rest);
    if (full) calls.push({ pid, name: full[1], args: full[2], ok: full[3] === '0' });
  }
  return calls;
}

describe('durable on power loss', () => {
  it('strace: fdatasync(temp) before rename, fsync(directory) after, for shards and zarr.json', async () => {
    const dir = tmpDir('strace');
    dirs.push(dir);
    const out = path.join(dir, 'data');
    const traceFile = path.join(dir, 'trace.txt');
    const st = spawn(
      'strace',
      [
        '-f',
        '-y',
        '-qq',
        '-e',
        'trace=fdatasync,fsync,rename,renameat,renameat2',
        '-o',
        traceFile,
        process.execPath,
        BIN,
        'run',
        '--out',
        out,
        '--port',
        '0',
        '--set',
        'sim.timepoints=3',
        '--set',
        'sim.width=128',
        '--set',
        'sim.height=128',
        '--set',
        'sim.fps=300',
        '--set',
        'sim.z_planes=8',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    st.stdout.on('data', (d: Buffer) => {
      log += d.toString();
    });
    st.stderr.on('data', (d: Buffer) => {
      log += d.toString();
    });
    try {
      await waitFor(() => /acquisition finished/.test(log), 60000, 'the simulated acquisition to finish');
    } finally {
      // The sidecar is strace's child: SIGTERM goes to it, strace exits with it.
      const kids = fs.existsSync(`/proc/${st.pid}/task/${st.pid}/children`)
        ? fs.readFileSync(`/proc/${st.pid}/task/${st.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)
        : [];
      for (const k of kids) process.kill(Number(k), 'SIGTERM');
      if (kids.length === 0) st.kill('SIGTERM');
    }
    expect(await exited(st), log).toBe(0);
    const calls = completedCalls(fs.readFileSync(traceFile, 'utf8'));
    const synced = new Set<string>();
    const awaitingDir = new Map<string, string>(); // final file -> its directory
    let renames = 0,
      shards = 0;
    const fdPath = (args: string) => /^\d+<(.*)>$/.exec(args)?.[1] ?? '';
    for (const c of calls) {
      if (!c.ok) continue;
      if (c.name === 'fdatasync' || c.name === 'fsync') {
        const p = fdPath(c.args);
        synced.add(p);
        for (const [f, d] of awaitingDir) if (d === p) awaitingDir.delete(f);
      } else if (c.name.startsWith('rename')) {
        const m = /"([^"]+)", "([^"]+)"/.exec(c.args);
        if (!m?.[2].startsWith(out)) continue;
        const [, from, to] = m;
        expect(synced.has(from), `${to} renamed into place before its data was synced`).toBe(true);
        awaitingDir.set(to, path.dirname(to));
        renames++;
        if (to.includes(`${path.sep}c${path.sep}`)) shards++;
      }
    }
    expect([...awaitingDir.keys()], 'renamed, but its directory never synced').toEqual([]);
    expect(shards).toBeGreaterThanOrEqual(6); // 3 timepoints x 2 channels
    expect(renames).toBeGreaterThan(shards);
    // And the store reads back (the sim's frames are checked bit-exact elsewhere; here: all shards present).
    const store = fs.readdirSync(out).find((d) => d.endsWith('.ome.zarr'));
    const arr = await openArray(path.join(out, store!));
    expect(arr.shape[0]).toBe(3);
  });
});
