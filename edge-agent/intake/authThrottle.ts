/**
 * Slows down repeated AUTH failures from one address, so a password cannot be guessed at line
 * speed: the first failure is answered at once, each further one within the window waits twice
 * as long as the one before, up to maxDelayMs.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();

  constructor(
    private readonly baseDelayMs = 250,
    private readonly maxDelayMs = 5_000,
    private readonly windowMs = 15 * 60_000,
  ) {}

  /** Records a failure and returns how long to wait before answering it. */
  fail(ip: string, now = Date.now()): number {
    const entry = this.failures.get(ip);
    const count = entry && now - entry.last < this.windowMs ? entry.count + 1 : 1;
    this.failures.set(ip, { count, last: now });
    if (this.failures.size > 10_000) {
      this.prune(now);
    }
    return count < 2 ? 0 : Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (count - 2));
  }

  succeed(ip: string): void {
    this.failures.delete(ip);
  }

  private prune(now: number): void {
    for (const [ip, entry] of this.failures) {
      if (now - entry.last >= this.windowMs) {
        this.failures.delete(ip);
      }
    }
  }
}
