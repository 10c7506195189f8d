/**
 * Where offload sends finished files: the interface the Offloader drives, modelled on
 * acquire-zarr's `Sink` (one object per destination kind, made by a factory). rclone (rclone.ts)
 * is the first implementation and reaches every backend facilities use (SFTP, WebDAV, S3, …); a
 * destination that is not rclone implements these five calls and is chosen in `openDestination`.
 */
import type { Config } from '../config/config.js';
import type { VerifyHash } from './verify.js';
import { RcloneDestination } from './rclone.js';

export interface VerifyMethod {
  hash: VerifyHash;
  /** The destination computes no hash spimstream can: each copy is read back and hashed. */
  readBack: boolean;
}

export interface OffloadDestination {
  /** The destination as configured (masked on output by secrets.ts). */
  readonly name: string;
  /** Null when it answers (lists), else one line saying why not. */
  reachable(): Promise<string | null>;
  /** The hashes it can compute on its side (empty: verify by reading back), or why it could not tell. */
  hashes(): Promise<{ hashes: string[] } | { error: string }>;
  /**
   * Copies `files` (paths relative to `root`, `bytes` in all) and verifies each copy against
   * spimstream's own digest of the local file. Resolves with the files verified there (never rejects).
   */
  copyAndVerify(
    root: string,
    files: string[],
    bytes: number,
    method: VerifyMethod,
  ): Promise<{ verified: Set<string>; error: string | null }>;
  /** A failure message as one of a bounded set of reasons (a metric label): unreachable, refused, destination-full, verify, other. */
  classify(message: string): string;
  /** Offload is urgent (the local disk fills): run at storing's priority, else yield to it. */
  setUrgent(urgent: boolean): void;
}

/** The destination `offload.destination` names (every kind is rclone today). */
export function openDestination(cfg: Config, tmpDir: string): OffloadDestination {
  const o = cfg.offload;
  return new RcloneDestination(
    { destination: o.destination, config: o.rclone_config, bandwidth: o.bandwidth, transfers: o.transfers, retries: o.retries },
    tmpDir,
  );
}
