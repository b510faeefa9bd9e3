/**
 * A deadline per connection that only progress moves: a message accepted, or another
 * `PROGRESS_BYTES` of DATA received. smtp-server's idle timeout restarts on every byte, so a
 * client that trickles one byte a minute (slowloris) would otherwise hold its connection for
 * ever; this is the equivalent of Postfix's smtpd_per_record_deadline for the whole transaction.
 * A device sending mail, even a large scan over a slow link, makes progress long before it.
 */
export class ProgressDeadlines {
  static readonly PROGRESS_BYTES = 64 * 1024;
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly timeoutMs: number,
    private readonly onExpired: (sessionId: string) => void,
  ) {}

  /** Starts (or restarts) the clock of a connection. */
  progress(sessionId: string): void {
    const running = this.timers.get(sessionId);
    if (running) {
      // Cheaper than a new timer per message or 64 KiB, and no allocation.
      running.refresh();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(sessionId);
      this.onExpired(sessionId);
    }, this.timeoutMs);
    timer.unref();
    this.timers.set(sessionId, timer);
  }

  clear(sessionId: string): void {
    clearTimeout(this.timers.get(sessionId));
    this.timers.delete(sessionId);
  }

  clearAll(): void {
    for (const timer of this.timers.values()) {
      clearTimeout(timer);
    }
    this.timers.clear();
  }
}
