/**
 * How a copy at the destination is verified: which hash, the local side's digests, and the sum
 * file `rclone checksum` compares the destination against. spimstream hashes the local files itself
 * (Node's OpenSSL: SHA-1 with the CPU's SHA extensions ~0.8 CPU-s per GB) so that rclone hashes only
 * the destination's side; `rclone check` hashed both, the local side with Go's MD5 (~2.4 CPU-s per
 * GB). bench/offload-bench.ts measures both ways.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';

export type VerifyHash = 'sha1' | 'md5' | 'sha256';

/**
 * Cheapest first, for both sides: SHA-1 (hardware-assisted in OpenSSL, Go's ~1.8 s/GB), MD5 (no
 * hardware help anywhere, ~2.3 s/GB), SHA-256 (Go 1.19's ~4 s/GB on the destination's side).
 */
const PREFERENCE: readonly VerifyHash[] = ['sha1', 'md5', 'sha256'];

/** The hash to verify with, from the destination's (rclone's names); none in common: read every file back and hash that. */
export function verifyMethod(destinationHashes: readonly string[]): { hash: VerifyHash; readBack: boolean } {
  const have = new Set(destinationHashes.map((h) => h.toLowerCase()));
  const hash = PREFERENCE.find((h) => have.has(h));
  return hash ? { hash, readBack: false } : { hash: 'sha1', readBack: true };
}

/** Hashes a file in 1 MiB slices (the event loop is never held for long). */
export async function localDigest(abs: string, hash: VerifyHash): Promise<string> {
  const h = createHash(hash);
  for await (const chunk of fs.createReadStream(abs, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Writes `sumFile` in the md5sum/sha1sum format rclone reads (`<hex>  <path>`, paths relative to
 * `root`); returns the files it could not read (gone locally: they cannot be verified).
 */
export async function writeSumFile(root: string, files: readonly string[], hash: VerifyHash, sumFile: string): Promise<string[]> {
  const lines: string[] = [];
  const unreadable: string[] = [];
  for (const f of files) {
    try {
      lines.push(`${await localDigest(path.join(root, f), hash)}  ${f}`);
    } catch {
      unreadable.push(f);
    }
  }
  await fs.promises.writeFile(sumFile, lines.length > 0 ? `${lines.join('\n')}\n` : '');
  return unreadable;
}
