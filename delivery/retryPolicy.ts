import type { FailureKind } from './classifyReply.ts';

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;
const UNIT_ORDER: readonly Unit[] = ['d', 'h', 'm', 's', 'ms'];

/**
 * '30s', '5m', '4h', '2d', '1h30m', '250ms' → milliseconds. Parts go from the largest unit down,
 * each unit at most once, so '30m1h' or '1h1h' (likely typos) are refused instead of summed.
 * @throws RangeError naming the text.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const parts = [...trimmed.matchAll(/(\d+)(ms|[dhms])/g)];
  const covered = parts.reduce((length, part) => length + part[0].length, 0);
  let total = 0;
  let lastRank = -1;
  let wellFormed = parts.length > 0 && covered === trimmed.length;
  for (const part of parts) {
    const unit = part[2] as Unit;
    const rank = UNIT_ORDER.indexOf(unit);
    if (rank <= lastRank) {
      wellFormed = false;
      break;
    }
    lastRank = rank;
    total += Number(part[1]) * UNIT_MS[unit];
  }
  if (!wellFormed) {
    throw new RangeError(
      `invalid duration ${JSON.stringify(text)}: expected whole numbers with units d, h, m, s or ms, largest first, e.g. '30s', '5m' or '1h30m'`,
    );
  }
  if (!Number.isSafeInteger(total)) {
    throw new RangeError(`invalid duration ${JSON.stringify(text)}: too long`);
  }
  return total;
}

export interface RetryPolicy {
  /** Delay before the 2nd attempt, the 3rd, ...; the last entry repeats. */
  scheduleMs: number[];
  /** A message older than this is given up on (for transient problems). */
  maxAgeMs: number;
}

/**
 * How long to wait before the next attempt, after `attemptsSoFar` attempts (1 after the first).
 * Transient problems follow the schedule, repeating its last entry. Config problems wait at least
 * the last entry every time: nothing changes until an operator acts, and hammering Exchange
 * Online with failing logins gets the mailbox or IP throttled or locked out.
 * @throws RangeError for a permanent failure (it is not retried), fewer than one attempt, or an
 * empty schedule.
 */
export function nextRetryDelay(policy: RetryPolicy, attemptsSoFar: number, kind: FailureKind): number {
  const schedule = policy.scheduleMs;
  const last = schedule[schedule.length - 1];
  if (last === undefined) {
    throw new RangeError('retry policy has an empty schedule');
  }
  if (!Number.isInteger(attemptsSoFar) || attemptsSoFar < 1) {
    throw new RangeError(`attemptsSoFar must be a whole number of at least 1, got ${attemptsSoFar}`);
  }
  if (kind === 'permanent') {
    throw new RangeError('a permanent failure is not retried');
  }
  const onSchedule = schedule[attemptsSoFar - 1] ?? last;
  return kind === 'config' ? Math.max(onSchedule, last) : onSchedule;
}

/** True once the message has been held for `maxAgeMs` or longer. */
export function hasExpired(policy: RetryPolicy, receivedAt: Date, now: Date): boolean {
  const received = receivedAt.getTime();
  const current = now.getTime();
  // NaN compares false, which would keep a message with a broken date forever.
  if (Number.isNaN(received) || Number.isNaN(current)) {
    throw new RangeError('hasExpired needs valid dates');
  }
  return current - received >= policy.maxAgeMs;
}
