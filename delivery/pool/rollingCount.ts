/**
 * A count over a rolling window in one-minute buckets: at most window/minute numbers whatever the
 * volume (10,000 recipients a day are 1,440 buckets, not 10,000 timestamps), and small enough to
 * persist on every change. A count leaves the window up to a minute late, never early.
 */
export const BUCKET_MS = 60_000;

/** [bucket start (epoch ms), count], oldest first: the persisted form. */
export type RollingBuckets = [number, number][];

export class RollingCount {
  private buckets: RollingBuckets;

  constructor(
    private readonly windowMs: number,
    buckets: RollingBuckets = [],
  ) {
    this.buckets = RollingCount.valid(buckets);
  }

  /** Replaces the counts with persisted ones (a restart). */
  restore(buckets: RollingBuckets): void {
    this.buckets = RollingCount.valid(buckets);
  }

  private static valid(buckets: RollingBuckets): RollingBuckets {
    return buckets
      .filter((b) => Array.isArray(b) && Number.isFinite(b[0]) && Number.isInteger(b[1]) && b[1] > 0)
      .map(([s, c]): [number, number] => [s, c])
      .sort((a, b) => a[0] - b[0]);
  }

  total(now = Date.now()): number {
    this.forget(now);
    let sum = 0;
    for (const [, count] of this.buckets) sum += count;
    return sum;
  }

  add(n: number, now = Date.now()): void {
    if (n <= 0) return;
    this.forget(now);
    const start = now - (now % BUCKET_MS);
    const last = this.buckets.at(-1);
    if (last && last[0] === start) last[1] += n;
    else this.buckets.push([start, n]);
  }

  /** Takes back `n` counted at `at` (an attempt that did not use what it reserved). */
  remove(n: number, at: number): void {
    const start = at - (at % BUCKET_MS);
    const bucket = this.buckets.find(([s]) => s === start);
    if (!bucket) return;
    bucket[1] = Math.max(0, bucket[1] - n);
    if (bucket[1] === 0) this.buckets = this.buckets.filter((b) => b !== bucket);
  }

  /**
   * When `n` more fit under `limit` (now when they do). More than the limit at once fits only in an
   * empty window, so one over-large message waits for the window instead of for ever.
   */
  roomAt(n: number, limit: number, now = Date.now()): number {
    let total = this.total(now);
    const needed = Math.min(n, limit);
    if (total + needed <= limit) return now;
    for (const [start, count] of this.buckets) {
      total -= count;
      if (total + needed <= limit) return start + BUCKET_MS + this.windowMs;
    }
    return now;
  }

  snapshot(now = Date.now()): RollingBuckets {
    this.forget(now);
    return this.buckets.map(([s, c]) => [s, c]);
  }

  private forget(now: number): void {
    let drop = 0;
    while (drop < this.buckets.length && (this.buckets[drop] as [number, number])[0] + BUCKET_MS + this.windowMs <= now) drop += 1;
    if (drop > 0) this.buckets = this.buckets.slice(drop);
  }
}
