/**
 * A real SFTP server for the offload bench and tests: Debian's sshd on a loopback port with
 * generated host and client keys (internal-sftp, no PAM), and the rclone config that reaches it.
 * The server hashes for verification (`rclone checksum sha1`): through OpenSSL's SHA-1, which uses
 * the CPU's SHA extensions (~0.8 CPU-s per GB against 2.6 for coreutils' sha1sum here), and takes
 * 255 KiB SFTP packets (OpenSSH's limit; the RFC's 32 KiB default costs both ends more per GB):
 * what a facility's OpenSSH storage server can be set up with, see README "Offload".
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface SftpServer {
  port: number;
  /** rclone config file with the remote `scope-archive`. */
  rcloneConfig: string;
  remote: string;
  proc: ChildProcess;
  stop(): Promise<void>;
  /** An rclone config like `rcloneConfig` whose client key (new, in `dir`) the server does not know: credentials rotated. */
  configWithUnknownKey(dir: string): string;
}

function keygen(file: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.end();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

/** Starts sshd with its files in `dir` on `port`; resolves once it accepts connections (throws after 15 s). */
export async function startSftpServer(dir: string, port: number): Promise<SftpServer> {
  fs.mkdirSync('/run/sshd', { recursive: true });
  for (const k of ['host', 'client']) keygen(path.join(dir, k));
  fs.copyFileSync(path.join(dir, 'client.pub'), path.join(dir, 'authorized_keys'));
  fs.writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const until = Date.now() + 15_000;
  while (!(await listening(port))) {
    if (proc.exitCode !== null || Date.now() > until) throw new Error(`sshd did not start listening on ${port}: ${err.trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const rcloneConfig = path.join(dir, 'rclone.conf');
  fs.writeFileSync(
    rcloneConfig,
    `[scope-archive]\ntype = sftp\nhost = 127.0.0.1\nport = ${port}\nuser = ${process.env.USER ?? 'root'}\nkey_file = ${path.join(dir, 'client')}\nshell_type = unix\nmd5sum_command = md5sum\nsha1sum_command = openssl dgst -sha1 -r\nchunk_size = 255k\n`,
  );
  return {
    port,
    rcloneConfig,
    remote: 'scope-archive',
    proc,
    stop: () =>
      new Promise<void>((r) => {
        if (proc.exitCode !== null) return r();
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
      }),
    configWithUnknownKey: (keyDir) => {
      keygen(path.join(keyDir, 'stranger'));
      const conf = path.join(keyDir, 'rclone.conf');
      fs.writeFileSync(
        conf,
        fs.readFileSync(rcloneConfig, 'utf8').replace(/^key_file = .*$/m, `key_file = ${path.join(keyDir, 'stranger')}`),
      );
      return conf;
    },
  };
}
