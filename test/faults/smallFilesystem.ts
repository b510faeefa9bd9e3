import { execFile } from 'node:child_process';
import { rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SmallFilesystem {
  readonly dir: string;
  /** Fills the filesystem with a ballast file until about `leaveBytes` are free. */
  fill(leaveBytes: number): Promise<void>;
  /** Removes the ballast. */
  free(): Promise<void>;
  unmount(): Promise<void>;
}

/**
 * Mounts a tmpfs of `size` (e.g. '2m') on `dir`: a disk that really fills up, ENOSPC and all.
 * Needs root (or CAP_SYS_ADMIN); resolves undefined where mounting is not permitted, and the
 * caller falls back to a spool whose temp files are /dev/full.
 */
export async function mountSmallFilesystem(dir: string, size: string): Promise<SmallFilesystem | undefined> {
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  } catch {
    return undefined;
  }
  const ballast = join(dir, 'ballast');
  return {
    dir,
    async fill(leaveBytes) {
      const { bavail, bsize } = await statfs(dir);
      await writeFile(ballast, Buffer.alloc(Math.max(0, bavail * bsize - leaveBytes)));
    },
    async free() {
      await rm(ballast, { force: true });
    },
    async unmount() {
      await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
    },
  };
}
