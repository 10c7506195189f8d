/**
 * Verification of copies (src/offload/verify.ts, rclone.ts): spimstream's digest of the local file
 * against the destination's hash (or a read-back), through real rclone to a local folder and to a
 * real SFTP server (Debian sshd on loopback). A copy that differs by one byte, is one byte short or
 * is missing must never count as verified; the files that do are compared bit-exact.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  copyAndVerify,
  destinationGone,
  failureReason,
  type RcloneOptions,
  rcloneEnvironment,
  verifyCopies,
} from '../src/offload/rclone.js';
import { localDigest, verifyMethod, writeSumFile, type VerifyHash } from '../src/offload/verify.js';
import { startSftpServer, type SftpServer } from '../bench/sftp-server.js';
import { freePort, tmpDir } from './helpers.js';

const FILES = ['acq 1/0/c/0/0/0/0', 'acq 1/0/c/0/0/0/1', 'acq 1/zarr.json', 'acq 1/0/zarr.json'];
let root = '';
let sftp: SftpServer | null = null;
let sftpDir = '';

beforeAll(async () => {
  root = tmpDir('verify-src');
  for (const [i, f] of FILES.entries()) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    // Shard-sized and small files, random bytes (what compressed chunks look like).
    fs.writeFileSync(path.join(root, f), randomBytes(i < 2 ? 3_000_000 + i : 700 + i));
  }
  sftpDir = tmpDir('verify-sshd');
  sftp = await startSftpServer(sftpDir, await freePort());
}, 60_000);

afterAll(async () => {
  await sftp?.stop();
  for (const d of [root, sftpDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

function destinations(): { name: string; dir: string; o: RcloneOptions }[] {
  const local = tmpDir('verify-dst');
  const remote = tmpDir('verify-sftp-dst');
  const base = { bandwidth: '', transfers: 2, retries: 1 };
  return [
    { name: 'local folder', dir: local, o: { ...base, destination: local, config: sftp?.rcloneConfig ?? '' } },
    { name: 'SFTP', dir: remote, o: { ...base, destination: `${sftp?.remote}:${remote}`, config: sftp?.rcloneConfig ?? '' } },
  ];
}

describe('verifying copies at the destination', () => {
  it('picks the cheapest hash both sides have, and reads back where the destination has none', () => {
    expect(verifyMethod(['md5', 'sha1'])).toEqual({ hash: 'sha1', readBack: false });
    expect(verifyMethod(['md5', 'crc32'])).toEqual({ hash: 'md5', readBack: false });
    expect(verifyMethod(['SHA256', 'whirlpool'])).toEqual({ hash: 'sha256', readBack: false });
    expect(verifyMethod([])).toEqual({ hash: 'sha1', readBack: true });
    expect(verifyMethod(['dropbox', 'quickxor']).readBack).toBe(true);
  });

  it("names the failure from rclone's message (a port number is not an HTTP status)", () => {
    expect(
      failureReason('Update mkParentDir failed: Mkcol "http://127.0.0.1:34019/a/": dial tcp 127.0.0.1:34019: connect: connection refused'),
    ).toBe('unreachable');
    expect(failureReason('Mkcol "http://127.0.0.1:50733/x/": 507 Insufficient Storage')).toBe('destination-full');
    expect(failureReason('preallocate: file too big for remaining disk space')).toBe('destination-full');
    expect(
      failureReason("couldn't connect SSH: ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]"),
    ).toBe('refused');
    expect(failureReason('401 Unauthorized')).toBe('refused');
    expect(failureReason('1 differences found')).toBe('verify');
    // S3 (rclone's s3 backend against Swift's s3api, as offload-s3.test.ts sees them)
    expect(
      failureReason(
        'Failed to copy with 2 errors: last error was: SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided.',
      ),
    ).toBe('refused');
    expect(failureReason('InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.')).toBe('refused');
    expect(failureReason('Failed to copy with 15 errors: last error was: RequestError: send request failed')).toBe('unreachable');
  });

  it('a real SFTP server refusing the key: nothing verified, the reason is `refused`, the local files untouched', async () => {
    // Same server, a key it was never given: what a facility sees when credentials are rotated.
    const keyDir = tmpDir('verify-badkey');
    const conf = (sftp as SftpServer).configWithUnknownKey(keyDir);
    const before = FILES.map((f) => fs.readFileSync(path.join(root, f)));
    const remote = tmpDir('verify-refused-dst');
    try {
      const bytes = FILES.reduce((s, f) => s + fs.statSync(path.join(root, f)).size, 0);
      const r = await copyAndVerify(
        root,
        FILES,
        bytes,
        { bandwidth: '', transfers: 2, retries: 1, destination: `${sftp?.remote}:${remote}`, config: conf },
        { hash: 'sha1', readBack: false },
        root,
      );
      expect(r.verified.size).toBe(0);
      expect(failureReason(r.error ?? ''), r.error ?? '').toBe('refused');
      for (const [i, f] of FILES.entries()) expect(Buffer.compare(fs.readFileSync(path.join(root, f)), before[i]), f).toBe(0);
      expect(fs.readdirSync(remote)).toEqual([]);
    } finally {
      fs.rmSync(keyDir, { recursive: true, force: true });
      fs.rmSync(remote, { recursive: true, force: true });
    }
  }, 120_000);

  it('local digests equal an independent hash of the file', async () => {
    for (const h of ['sha1', 'md5', 'sha256'] as const) {
      const f = path.join(root, FILES[0]);
      expect(await localDigest(f, h)).toBe(createHash(h).update(fs.readFileSync(f)).digest('hex'));
    }
  });

  const methods: { hash: VerifyHash; readBack: boolean }[] = [
    { hash: 'sha1', readBack: false },
    { hash: 'md5', readBack: false },
    { hash: 'sha1', readBack: true },
  ];
  for (const method of methods) {
    it(`${method.hash}${method.readBack ? ' by read-back' : ''}: whole copies verify, bit-exact; a flipped byte, a short copy and a missing one never do`, async () => {
      for (const d of destinations()) {
        const bytes = FILES.reduce((s, f) => s + fs.statSync(path.join(root, f)).size, 0);
        const r = await copyAndVerify(root, FILES, bytes, d.o, method, root);
        expect(r.error, `${d.name}: ${r.error}`).toBeNull();
        expect([...r.verified].sort(), d.name).toEqual([...FILES].sort());
        for (const f of FILES)
          expect(Buffer.compare(fs.readFileSync(path.join(d.dir, f)), fs.readFileSync(path.join(root, f))), `${d.name}: ${f}`).toBe(0);
        // Damage three copies: one byte flipped in a shard, the other shard one byte short, a metadata file gone.
        const flipped = path.join(d.dir, FILES[0]);
        const b = fs.readFileSync(flipped);
        b[1_234_567] ^= 0x10;
        fs.writeFileSync(flipped, b);
        fs.truncateSync(path.join(d.dir, FILES[1]), fs.statSync(path.join(d.dir, FILES[1])).size - 1);
        fs.rmSync(path.join(d.dir, FILES[2]));
        const sums = path.join(root, `.sums-${method.hash}`);
        expect(await writeSumFile(root, FILES, method.hash, sums)).toEqual([]);
        const again = await verifyCopies(FILES, bytes, sums, d.o, method, root);
        fs.rmSync(sums);
        expect([...again.verified], `${d.name}: only the intact copy verifies`).toEqual([FILES[3]]);
        expect(again.error, `${d.name}: the damaged copies are reported`).not.toBeNull();
        fs.rmSync(d.dir, { recursive: true, force: true });
      }
    }, 120_000);
  }
});

describe('a destination that is gone', () => {
  it('a batch to a port where nothing listens stops at the first file that cannot connect (rclone is stopped, not left to pace through every file)', async () => {
    // rclone's pacer waits up to 2 s before each further file fails the same way: left alone, these
    // 40 files take over a minute to fail; spimstream stops rclone at the first such line.
    const src = tmpDir('gone-src');
    const files = Array.from({ length: 40 }, (_, i) => `acq/0/c/${i}/0/0/0`);
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.writeFileSync(path.join(src, f), randomBytes(1000));
    }
    const port = await freePort(); // bound and released: nothing listens there
    const o: RcloneOptions = {
      destination: `:webdav,url='http://127.0.0.1:${port}':`,
      config: '',
      bandwidth: '',
      transfers: 2,
      retries: 1,
    };
    const r = await copyAndVerify(src, files, 40_000, o, { hash: 'sha256', readBack: true }, tmpDir('gone-tmp'));
    fs.rmSync(src, { recursive: true, force: true });
    expect(r.verified.size).toBe(0);
    expect(r.error).toMatch(/^destination unreachable, batch stopped at the first file that could not connect: .*connection refused/);
    expect(failureReason(r.error ?? '')).toBe('unreachable');
    expect(destinationGone('2026/12/07 12:39:10 ERROR : x/25/f: Failed to copy: dial tcp 127.0.0.1:1: connect: connection refused')).toBe(
      true,
    );
    // S3 (the AWS SDK): the cause comes on the record's next line.
    expect(
      destinationGone(
        '2026/12/07 12:54:14 ERROR : acq/0/c/39/0/0/0: Failed to copy: RequestError: send request failed\ncaused by: Put "http://127.0.0.1:1/bk": dial tcp 127.0.0.1:1: connect: connection refused\n',
      ),
    ).toBe(true);
    // A reset mid-transfer is a flaky link, left to rclone's retries; a notice is not an error.
    expect(destinationGone('2026/12/07 12:39:10 ERROR : x/25/f: Failed to copy: read tcp: connection reset by peer')).toBe(false);
    expect(destinationGone('2026/12/07 12:39:10 NOTICE: retrying after connection refused')).toBe(false);
  });
});

describe("rclone's environment", () => {
  it("AWS_CA_BUNDLE, which rclone's s3 backend cannot load, is removed from its environment and passed as --ca-cert", () => {
    const { env, args } = rcloneEnvironment({ PATH: '/usr/bin', AWS_CA_BUNDLE: '/etc/ssl/certs/ca.pem', HOME: '/root' });
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/root' });
    expect(args).toEqual(['--ca-cert', '/etc/ssl/certs/ca.pem']);
    expect(rcloneEnvironment({ PATH: '/usr/bin' })).toEqual({ env: { PATH: '/usr/bin' }, args: [] });
  });
});
