/** Free space on the file system that holds (or will hold) a directory. */
import fs from 'node:fs';
import path from 'node:path';

export function diskFree(dir: string): number | null {
  try {
    let d = path.resolve(dir);
    while (!fs.existsSync(d)) d = path.dirname(d);
    const s = fs.statfsSync(d);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}
