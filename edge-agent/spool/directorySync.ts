import { open } from 'node:fs/promises';

/**
 * fsyncs a directory so that renames into it survive a power cut, coalescing concurrent callers:
 * a caller that arrives while a sync runs waits for the next one, which covers every rename done
 * before it started. Under load many messages then share one directory fsync (group commit).
 */
export class DirectorySync {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

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

  private async runOnce(): Promise<void> {
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
