import { closeFd, fsyncFd, openFd } from './spoolFile.ts';

/**
 * fsyncs a directory so that renames into it survive a power cut, coalescing concurrent callers:
 * a caller that arrives while a sync runs waits for the next one, which covers every rename done
 * before it started. Under load many messages then share one directory fsync (group commit).
 */
export class DirectorySync {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /** Kept open between syncs: one thread-pool call per sync instead of three. */
  private fd: Promise<number> | undefined;

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    if (!this.queued) {
      this.queued = this.running.then(
        () => this.startQueued(),
        () => this.startQueued(),
      );
    }
    return this.queued;
  }

  private startQueued(): Promise<void> {
    this.queued = undefined;
    return this.sync();
  }

  /** Closes the directory; a later sync opens it again. */
  async close(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    await Promise.allSettled([this.running, this.queued]);
    if (fd) {
      await closeFd(await fd).catch(() => undefined);
    }
  }

  private async runOnce(): Promise<void> {
    this.fd ??= openFd(this.dir, 'r');
    const fd = this.fd;
    try {
      await fsyncFd(await fd);
    } catch (error) {
      // A descriptor that failed is not trusted again (the folder may have been replaced).
      if (this.fd === fd) {
        this.fd = undefined;
        await fd.then((n) => closeFd(n)).catch(() => undefined);
      }
      throw error;
    }
  }
}
