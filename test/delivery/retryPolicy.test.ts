import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasExpired, nextRetryDelay, type RetryPolicy } from '../../delivery/retryPolicy.ts';
import { parseDuration } from '../../config-toolkit/duration.ts';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe('parseDuration', () => {
  const valid: readonly [string, number][] = [
    ['30s', 30 * SECOND],
    ['1m', MINUTE],
    ['5m', 5 * MINUTE],
    ['1h', HOUR],
    ['4h', 4 * HOUR],
    ['2d', 2 * DAY],
    ['1h30m', HOUR + 30 * MINUTE],
    ['1d2h3m4s5ms', DAY + 2 * HOUR + 3 * MINUTE + 4 * SECOND + 5],
    ['250ms', 250],
    ['0s', 0],
    [' 10m ', 10 * MINUTE],
  ];
  for (const [text, ms] of valid) {
    it(`reads ${JSON.stringify(text)} as ${ms} ms`, () => {
      assert.equal(parseDuration(text), ms);
    });
  }

  const invalid = ['', '30', 's', '1.5h', '-5m', '5 m', '1h 30m', '30m1h', '1h1h', '5M', '5min', '1w', 'abc', '1h30', '999999999999999999d'];
  for (const text of invalid) {
    it(`refuses ${JSON.stringify(text)} with a RangeError naming it`, () => {
      assert.throws(
        () => parseDuration(text),
        (error: unknown) => error instanceof RangeError && error.message.includes(JSON.stringify(text)),
      );
    });
  }
});

describe('nextRetryDelay', () => {
  const policy: RetryPolicy = { scheduleMs: [1 * MINUTE, 5 * MINUTE, 15 * MINUTE, 1 * HOUR], maxAgeMs: 2 * DAY };

  it('follows the schedule for transient failures, one entry per attempt', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((attempts) => nextRetryDelay(policy, attempts, 'transient')),
      [1 * MINUTE, 5 * MINUTE, 15 * MINUTE, 1 * HOUR],
    );
  });

  it('repeats the last entry once the schedule runs out', () => {
    assert.equal(nextRetryDelay(policy, 5, 'transient'), HOUR);
    assert.equal(nextRetryDelay(policy, 500, 'transient'), HOUR);
  });

  it('never retries a config problem faster than the last entry', () => {
    for (const attempts of [1, 2, 3, 4, 10]) {
      assert.equal(nextRetryDelay(policy, attempts, 'config'), HOUR, `after ${attempts} attempts`);
    }
  });

  it('keeps a slower step for config problems when the schedule has one before its end', () => {
    const uneven: RetryPolicy = { scheduleMs: [1 * MINUTE, 6 * HOUR, 1 * HOUR], maxAgeMs: DAY };
    assert.equal(nextRetryDelay(uneven, 2, 'config'), 6 * HOUR);
    assert.equal(nextRetryDelay(uneven, 1, 'config'), HOUR);
  });

  it('refuses to schedule a permanent failure', () => {
    assert.throws(() => nextRetryDelay(policy, 1, 'permanent'), RangeError);
  });

  it('refuses attempt counts below one or not whole', () => {
    for (const attempts of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => nextRetryDelay(policy, attempts, 'transient'), RangeError, String(attempts));
    }
  });

  it('refuses an empty schedule', () => {
    assert.throws(() => nextRetryDelay({ scheduleMs: [], maxAgeMs: DAY }, 1, 'transient'), /empty schedule/);
  });
});

describe('hasExpired', () => {
  const policy: RetryPolicy = { scheduleMs: [MINUTE], maxAgeMs: 2 * DAY };
  const receivedAt = new Date('2026-11-27T09:00:00.000Z');

  it('keeps a message younger than maxAge', () => {
    assert.equal(hasExpired(policy, receivedAt, new Date(receivedAt.getTime() + 2 * DAY - 1)), false);
  });

  it('expires a message exactly maxAge old, and older', () => {
    assert.equal(hasExpired(policy, receivedAt, new Date(receivedAt.getTime() + 2 * DAY)), true);
    assert.equal(hasExpired(policy, receivedAt, new Date(receivedAt.getTime() + 3 * DAY)), true);
  });

  it('keeps a message whose clock reads earlier than its arrival', () => {
    assert.equal(hasExpired(policy, receivedAt, new Date(receivedAt.getTime() - HOUR)), false);
  });

  it('refuses an invalid date rather than keep the message forever', () => {
    assert.throws(() => hasExpired(policy, new Date('not a date'), new Date()), RangeError);
  });
});
