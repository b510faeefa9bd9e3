import { setTimeout as delay } from 'node:timers/promises';

/**
 * At most `perMinute` deliveries in any 60 seconds (Exchange Online allows 30 messages a minute
 * per mailbox), each counted from its start until it is settled, then from when the upstream
 * answered: the relay's one rate limiter. The spool delivery loop asks before it
 * starts one, so a message waiting for its turn stays queued, not "in flight": a shutdown does
 * not wait for the window to open. Where the caller does not schedule (the SQS poller, the
 * Lambda function) the submitter waits for a slot itself (`waitForSlot`).
 */
export class SendRate {
  private readonly starts: number[] = [];

  constructor(
    private readonly perMinute: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Takes a slot and returns true, or returns false when the window is full. */
  tryTake(now = Date.now()): boolean {
    this.forget(now);
    if (this.starts.length >= this.perMinute) {
      return false;
    }
    this.starts.push(now);
    return true;
  }

  /** Takes a slot, waiting for the window to open when it is full; resolves with the slot's time (for `settle`). */
  async waitForSlot(): Promise<number> {
    for (;;) {
      const now = Date.now();
      if (this.tryTake(now)) return now;
      await delay(Math.max(1, this.nextSlotAt(now) - now));
    }
  }

  /**
   * Moves a slot taken at `takenAt` to `at`, when the upstream answered. Exchange Online counts a
   * message when it takes it, not when the relay began: the first one on a connection spends a
   * TLS handshake and the AUTH before it is counted, so a window reckoned from the starts alone let
   * the next minute's first message in before Exchange's had passed (432 4.3.2, then a pause).
   * A slot already out of the window (a delivery longer than it) comes back at `at`.
   */
  settle(takenAt: number, at = Date.now()): void {
    if (at <= takenAt) return;
    const index = this.starts.lastIndexOf(takenAt);
    if (index >= 0) this.starts.splice(index, 1);
    let i = this.starts.length;
    while (i > 0 && (this.starts[i - 1] as number) > at) i -= 1;
    this.starts.splice(i, 0, at);
  }

  /** Returns a slot taken at `at` that was not used (the pool chose the message, then held it back). */
  giveBack(at: number): void {
    const index = this.starts.lastIndexOf(at);
    if (index >= 0) this.starts.splice(index, 1);
  }

  /** Slots taken in the current window: how loaded this mailbox is. */
  used(now = Date.now()): number {
    this.forget(now);
    return this.starts.length;
  }

  /** When the next slot opens (now when one is free). */
  nextSlotAt(now = Date.now()): number {
    this.forget(now);
    return this.starts.length < this.perMinute ? now : (this.starts[0] as number) + this.windowMs;
  }

  private forget(now: number): void {
    while (this.starts.length > 0 && (this.starts[0] as number) <= now - this.windowMs) {
      this.starts.shift();
    }
  }
}
