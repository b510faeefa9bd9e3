import type { FailureKind } from './classifyReply.ts';

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
