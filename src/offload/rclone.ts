/**
 * rclone, driven as its users do: one `rclone` process per batch (copy, then check), with the
 * batch's files in a --files-from list. Chosen over `rclone rcd` because a batch of finished shards
 * is seconds of work, a process per batch costs ~30 ms, and nothing stays running to supervise or
 * secure (rcd needs a socket and credentials). Verification (verify.ts) compares the destination's
 * hash with spimstream's digest of the local file; where the destination has none (WebDAV, some S3
 * gateways) rclone reads each file back and hashes that (`checksum --download`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { writeSumFile, type VerifyHash } from './verify.js';
import type { OffloadDestination } from './destination.js';

/**
 * rclone yields at nice 19: storing comes before offload. With spare cores this costs offload
 * nothing; when the CPU is short, offload lags (the local disk holds the backlog) instead of storage
 * shedding frames: at nice 10 rclone still took enough to shed 134 of 2153 frames in
 * bench/offload-bench.ts at 300 MB/s on 2 cores; at 19, none. The offloader runs it at storing's
 * priority instead (nice 0) once the backlog threatens the local disk (offloader.ts).
 */
export const RCLONE_NICE_YIELD = 19;

export interface RcloneOptions {
  destination: string;
  config: string;
  bandwidth: string;
  transfers: number;
  retries: number;
  /** Added to spimstream's nice for the rclone process (set before exec, so every rclone thread has it). */
  nice?: number;
}

export interface RcloneResult {
  code: number | null;
  /** The last error-looking line of rclone's output (for the log and the failure reason). */
  message: string;
}

/**
 * The failure reasons (a bounded label set for spimstream_offload_failures_total) from rclone's
 * message. HTTP codes only as whole numbers: a port such as 127.0.0.1:34019 is not a 401.
 */
export function failureReason(message: string): string {
  if (/no space|quota|insufficient storage|\b507\b|disk full|disk space|ENOSPC/i.test(message)) return 'destination-full';
  // S3's error codes name refused credentials (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied, ...).
  if (
    /permission denied|auth|\b40[13]\b|unauthori[sz]ed|forbidden|unable to authenticate|handshake failed|SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|ExpiredToken|InvalidToken/i.test(
      message,
    )
  )
    return 'refused';
  // "send request failed": the AWS SDK's word for a connection that broke or was never made.
  if (
    /connection refused|connection reset|broken pipe|no route|timeout|timed out|dial tcp|connect:|unreachable|eof|send request failed/i.test(
      message,
    )
  )
    return 'unreachable';
  if (/verif|differ|hash/i.test(message)) return 'verify';
  return 'other';
}

/**
 * rclone's environment and the flags that stand in for what it cannot take from there:
 * AWS_CA_BUNDLE makes rclone's s3 backend fail outright ("LoadCustomCABundleError ... unsupported
 * transport"), so it is removed from rclone's environment and its file passed as --ca-cert, which
 * rclone applies to every HTTPS destination.
 */
export function rcloneEnvironment(env: NodeJS.ProcessEnv = process.env): { env: NodeJS.ProcessEnv; args: string[] } {
  const { AWS_CA_BUNDLE: bundle, ...rest } = env;
  return { env: rest, args: bundle ? ['--ca-cert', bundle] : [] };
}

/**
 * An rclone error record (its ERROR line and any "caused by:" lines after it) saying the destination
 * is not there at all (nothing listens, no route, no such host). rclone's pacer then waits 2-5 s
 * before each remaining file of the batch fails the same way (95 s for 50 files to a stopped WebDAV
 * server here), so the batch is stopped at the first such record and retried with spimstream's
 * backoff. A reset or a timeout mid-transfer is left to rclone's own retries: a flaky link is not a
 * dead one.
 */
export function destinationGone(record: string): boolean {
  return / ERROR : /.test(record) && /connection refused|no route to host|no such host|network is unreachable/i.test(record);
}

/** rclone's stderr in records: a line starting with its date stamp, then that record's continuation lines. */
const RECORD_START = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /;

/**
 * Runs rclone with `args`, resolving with its exit code and last error line (never rejects). At the
 * first error record saying the destination is gone, rclone is stopped (code null) and that record,
 * on one line, is the message.
 */
export function runRclone(
  args: string[],
  o: Pick<RcloneOptions, 'config' | 'nice'>,
  timeoutMs = 3_600_000,
): Promise<RcloneResult & { stdout: string }> {
  const { env, args: envArgs } = rcloneEnvironment();
  const full = [...(o.config ? ['--config', o.config] : []), ...envArgs, ...args];
  const nice = o.nice ?? RCLONE_NICE_YIELD;
  return new Promise((resolve) => {
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      // coreutils' nice execs rclone (same pid): the Go runtime's threads all start niced, which a
      // setpriority after spawn cannot promise (Linux nice is per thread).
      child =
        nice > 0
          ? spawn('nice', ['-n', String(nice), 'rclone', ...full], { stdio: ['ignore', 'pipe', 'pipe'], env })
          : spawn('rclone', full, { stdio: ['ignore', 'pipe', 'pipe'], env });
    } catch (e) {
      resolve({ code: null, message: `cannot run rclone: ${(e as Error).message}`, stdout: '' });
      return;
    }
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      if (out.length < 1 << 20) out += d.toString();
    });
    let gone = '';
    let record = '';
    child.stderr.on('data', (d: Buffer) => {
      const text = d.toString();
      if (err.length < 1 << 16) err += text;
      if (gone !== '') return;
      // The record being written so far: a match in part of a record is a match of the whole.
      for (const piece of text.split(/(?<=\n)/)) {
        const atLineStart = record === '' || record.endsWith('\n');
        record = atLineStart && RECORD_START.test(piece) ? piece : record + piece;
        if (record.length > 4096) record = record.slice(0, 4096);
        if (destinationGone(record)) {
          gone = record.replace(/\s*\n\s*/g, ' ').trim();
          child.kill('SIGTERM');
          return;
        }
      }
    });
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, message: `cannot run rclone (is the Debian package rclone installed?): ${e.message}`, stdout: out });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = err.split('\n').filter((l) => /ERROR|Failed|error|couldn't|failed/.test(l));
      const last = (gone || lines.at(-1) || err.trim().split('\n').at(-1) || '').replace(RECORD_START, '');
      const message = killed
        ? `rclone timed out after ${Math.round(timeoutMs / 1000)} s (killed): ${last}`
        : gone
          ? `destination unreachable, batch stopped at the first file that could not connect: ${last}`
          : last;
      resolve({ code: gone ? null : code, message, stdout: out });
    });
  });
}

/**
 * A probe of the destination fails in a second when it cannot be reached or refuses: rclone's default
 * 10 low-level retries with its pacer's backoff made each refused attempt 11 s (measured, SFTP).
 */
const PROBE = ['--low-level-retries', '1', '--retries', '1', '--contimeout', '10s', '--timeout', '30s'];

/** The hashes the destination backend can give (empty: verify by reading back). Null when it cannot be reached. */
export async function destinationHashes(o: RcloneOptions): Promise<{ hashes: string[] } | { error: string }> {
  const r = await runRclone(['backend', 'features', ...PROBE, o.destination], o, 60_000);
  const i = r.stdout.indexOf('{');
  if (r.code !== 0 || i < 0) return { error: r.message || `rclone exited with ${r.code}` };
  try {
    return { hashes: (JSON.parse(r.stdout.slice(i)) as { Hashes?: string[] }).Hashes ?? [] };
  } catch {
    return { error: 'rclone backend features gave no JSON' };
  }
}

/** Fails in one line when the destination cannot be listed (bad remote, refused credentials, down). */
export async function reachable(o: RcloneOptions): Promise<string | null> {
  const r = await runRclone(['lsf', '--max-depth', '1', ...PROBE, o.destination], o, 120_000);
  // Exit 3 is rclone's "directory not found": the remote answered, and the first copy creates the path.
  return r.code === 0 || r.code === 3 ? null : r.message || `rclone exited with ${r.code}`;
}

function common(o: RcloneOptions): string[] {
  // Low-level retries off: a dead destination must fail the batch in seconds (spimstream retries it
  // with backoff); rclone's own --retries re-run the batch for flaky links.
  return [
    '--transfers',
    String(o.transfers),
    '--retries',
    String(Math.max(1, o.retries)),
    '--low-level-retries',
    '1',
    // One PUT per file up to 5 GiB on S3: a single-part object's ETag is the server's MD5 of what it
    // received, the hash verification compares; a multipart ETag is not the file's MD5 (and
    // rclone's stored MD5 of a multipart upload is its own claim, computed before sending).
    '--s3-upload-cutoff',
    '5G',
    '--contimeout',
    '15s',
    '--timeout',
    '60s',
    ...(o.bandwidth ? ['--bwlimit', o.bandwidth] : []),
  ];
}

/** The batch's file list for rclone's --files-from-raw, removed by `done`. */
function listFile(tmpDir: string, files: readonly string[]): { list: string; done: () => void } {
  const list = path.join(tmpDir, `.offload-batch-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.txt`);
  fs.writeFileSync(list, `${files.join('\n')}\n`);
  return { list, done: () => fs.rmSync(list, { force: true }) };
}

/** A batch that hangs (a server gone mid-request) is killed and retried: 2 min plus 1 s per 5 MB. */
const limitMs = (bytes: number) => 120_000 + bytes / 5e3;

/**
 * Checks `files` at the destination against `sums` (a sum file of the local files, verify.ts):
 * rclone hashes only the destination's side, or with `readBack` downloads each file and hashes
 * that. Returns the files that match; a file missing or different there is not among them.
 */
export async function verifyCopies(
  files: string[],
  bytes: number,
  sums: string,
  o: RcloneOptions,
  method: { hash: VerifyHash; readBack: boolean },
  tmpDir: string,
): Promise<{ verified: Set<string>; error: string | null }> {
  const { list, done } = listFile(tmpDir, files);
  const match = `${list}.match`;
  try {
    const check = await runRclone(
      [
        'checksum',
        method.hash,
        sums,
        o.destination,
        '--files-from-raw',
        list,
        '--match',
        match,
        ...(method.readBack ? ['--download'] : []),
        ...common(o),
      ],
      o,
      limitMs(bytes),
    );
    const verified = new Set(fs.existsSync(match) ? fs.readFileSync(match, 'utf8').split('\n').filter(Boolean) : []);
    return { verified, error: check.code === 0 ? null : check.message || `rclone checksum exited with ${check.code}` };
  } finally {
    done();
    fs.rmSync(match, { force: true });
  }
}

/**
 * Copies `files` (relative to `root`, `bytes` in all) to the destination and verifies them there
 * against spimstream's own digests of the local files, computed while rclone copies. Returns the
 * files verified. `--no-traverse`: the destination is not listed per batch; `--ignore-checksum`:
 * copy's own post-transfer hash (both sides) is skipped, the checksum verifies; `--buffer-size 0`:
 * no read-ahead copy of local files, which are on a local disk (rclone's CPU per GB −20 to −40 %).
 */
export async function copyAndVerify(
  root: string,
  files: string[],
  bytes: number,
  o: RcloneOptions,
  method: { hash: VerifyHash; readBack: boolean },
  tmpDir: string,
): Promise<{ verified: Set<string>; error: string | null }> {
  const { list, done } = listFile(tmpDir, files);
  const sums = `${list}.${method.hash}`;
  try {
    const [copy] = await Promise.all([
      runRclone(
        ['copy', root, o.destination, '--files-from-raw', list, '--no-traverse', '--ignore-checksum', '--buffer-size', '0', ...common(o)],
        o,
        limitMs(bytes),
      ),
      writeSumFile(root, files, method.hash, sums),
    ]);
    if (copy.code !== 0) return { verified: new Set(), error: copy.message || `rclone copy exited with ${copy.code}` };
    return await verifyCopies(files, bytes, sums, o, method, tmpDir);
  } finally {
    done();
    fs.rmSync(sums, { force: true });
  }
}

/** Offload through rclone (destination.ts): one rclone process per call, niced unless urgent. */
export class RcloneDestination implements OffloadDestination {
  readonly name: string;

  constructor(
    private readonly o: RcloneOptions,
    private readonly tmpDir: string,
  ) {
    this.name = o.destination;
  }

  reachable(): Promise<string | null> {
    return reachable(this.o);
  }

  hashes(): Promise<{ hashes: string[] } | { error: string }> {
    return destinationHashes(this.o);
  }

  copyAndVerify(
    root: string,
    files: string[],
    bytes: number,
    method: { hash: VerifyHash; readBack: boolean },
  ): Promise<{ verified: Set<string>; error: string | null }> {
    return copyAndVerify(root, files, bytes, this.o, method, this.tmpDir);
  }

  classify(message: string): string {
    return failureReason(message);
  }

  setUrgent(urgent: boolean): void {
    this.o.nice = urgent ? 0 : RCLONE_NICE_YIELD;
  }
}
