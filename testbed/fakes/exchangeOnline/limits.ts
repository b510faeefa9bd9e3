import { normalizeAddress } from './directory.ts';

/** Authenticated sessions per mailbox at once (EXO: 3). */
export class ConcurrencyGate {
  private readonly holders = new Map<string, Set<string>>();
  private peak = 0;

  constructor(private readonly limit: number) {}

  /** Takes a slot for this session; false when the mailbox already has `limit` sessions. */
  tryAcquire(mailbox: string, sessionId: string): boolean {
    const key = normalizeAddress(mailbox);
    const set = this.holders.get(key) ?? new Set<string>();
    if (set.size >= this.limit) return false;
    set.add(sessionId);
    this.holders.set(key, set);
    this.peak = Math.max(this.peak, set.size);
    return true;
  }

  release(mailbox: string, sessionId: string): void {
    const key = normalizeAddress(mailbox);
    const set = this.holders.get(key);
    if (!set) return;
    set.delete(sessionId);
    if (set.size === 0) this.holders.delete(key);
  }

  active(mailbox: string): number {
    return this.holders.get(normalizeAddress(mailbox))?.size ?? 0;
  }

  /** Most authenticated sessions one mailbox ever had at once. */
  get maxObserved(): number {
    return this.peak;
  }
}

/** Accepted messages per mailbox in a sliding 60 s window (EXO: 30 per minute). */
export class RateWindow {
  private readonly sent = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number,
    private readonly windowMs = 60_000,
  ) {}

  /** Records one message if the mailbox is under its limit; false when it is throttled. */
  tryConsume(mailbox: string): boolean {
    const key = normalizeAddress(mailbox);
    const t = this.now();
    const recent = (this.sent.get(key) ?? []).filter((at) => at > t - this.windowMs);
    if (recent.length >= this.perMinute) {
      this.sent.set(key, recent);
      return false;
    }
    recent.push(t);
    this.sent.set(key, recent);
    return true;
  }
}
