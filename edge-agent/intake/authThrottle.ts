/**
 * Slows down AUTH failures so a password cannot be guessed at line speed, however many
 * connections the guesser opens. Per address: the first failure is answered at once, each further
 * one within the window waits twice as long as the one before, up to maxDelayMs, and the waits
 * queue one behind the other: ten parallel connections from one address get their failures
 * answered one at a time, not ten at a time (which was ten times the rate). Over all addresses
 * together at most one failure is answered every globalIntervalMs, for a guesser with many
 * addresses. Successes are never delayed: a device with the right password is not slowed down by
 * someone else's guesses, nor by its own earlier typos.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; last: number; answerAt: number }>();
  /** When the next failure may be answered, over all addresses. */
  private globalAnswerAt = 0;

  constructor(
    private readonly baseDelayMs = 250,
    private readonly maxDelayMs = 5_000,
    private readonly windowMs = 15 * 60_000,
    private readonly globalIntervalMs = 100,
  ) {}

  /** Records a failure and returns how long to wait before answering it. */
  fail(ip: string, now = Date.now()): number {
    const entry = this.failures.get(ip);
    const fresh = !entry || now - entry.last >= this.windowMs;
    const count = fresh ? 1 : entry.count + 1;
    const delay = count < 2 ? 0 : Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (count - 2));
    // Queued behind the failures of this address still waiting for their answer.
    const answerAt = Math.max(now, fresh ? now : entry.answerAt) + delay;
    const globalAt = Math.max(now, this.globalAnswerAt);
    const at = Math.max(answerAt, globalAt);
    this.globalAnswerAt = globalAt + this.globalIntervalMs;
    this.failures.set(ip, { count, last: now, answerAt: at });
    if (this.failures.size > 10_000) {
      this.prune(now);
    }
    return at - now;
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
