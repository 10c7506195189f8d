/**
 * Durability of renames: a file renamed into place is on disk after a power cut only once its data
 * was synced before the rename and its directory after it (ext4/xfs may otherwise leave it empty
 * or short). Directory syncs are batched: every rename that happens while one is queued shares it.
 */
import fs from 'node:fs';
import path from 'node:path';

const queued = new Map<string, Promise<void>>();

/** fsync(dir), shared by all renames into `dir` made before it starts. */
export function syncDir(dir: string): Promise<void> {
  const waiting = queued.get(dir);
  if (waiting) return waiting;
  const p = (async () => {
    await new Promise((r) => setImmediate(r)); // let the renames of this turn join the batch
    queued.delete(dir);
    const fh = await fs.promises.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  })();
  queued.set(dir, p);
  return p;
}

/** Writes `text` to `file` atomically and durably: temporary file, fsync, rename, fsync(dir). */
export function writeFileDurableSync(file: string, text: string, tmp: string): void {
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, text);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // the previous file stays in place, whole
    throw e;
  }
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/** `writeFileDurableSync` off the calling thread (libuv pool): for writes made while frames stream. */
export async function writeFileDurable(file: string, text: string, tmp: string): Promise<void> {
  try {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await fh.writeFile(text);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined); // the previous file stays, whole
    throw e;
  }
  await syncDir(path.dirname(file));
}
