import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QUEUE_HOLD_LIMIT_MS } from '../../contract/cloudResources.ts';
import { classifyReply } from '../../delivery/classifyReply.ts';
import type { AttemptOutcome, RecipientOutcome } from '../../delivery/deliverMessage.ts';
import type { RetryPolicy } from '../../delivery/retryPolicy.ts';
import { settleAttempt, type MessageProgress } from '../../delivery/settle/settleAttempt.ts';

/**
 * The settle step (delivery/settle/settleAttempt.ts), the one rule of both runtimes: every failure
 * class against every input that changes the decision (attempt number, age, the cloud's hold limit).
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const POLICY: RetryPolicy = { scheduleMs: [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 4 * HOUR], maxAgeMs: 2 * DAY };
const RECEIVED = new Date('2026-12-01T08:00:00.000Z');
const A = 'a@contoso.com';
const B = 'b@contoso.com';

const REPLIES = {
  transient: { responseCode: 451, response: '451 4.3.0 Temporary server error', command: 'DATA' },
  throttled: { responseCode: 432, response: '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded', command: 'DATA' },
  permanent: { responseCode: 550, response: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', command: 'RCPT TO' },
  config: { responseCode: 535, response: '535 5.7.3 Authentication unsuccessful', command: 'AUTH XOAUTH2' },
} as const;
type Class = keyof typeof REPLIES;

function refusal(rcpt: string, cls: Class): RecipientOutcome {
  const failure = REPLIES[cls];
  return { rcpt, reply: failure.response, classification: classifyReply(failure, { mailbox: 'relay@contoso.com', sender: 'copier@contoso.com' }) };
}

/** The whole submission failed with this class, for every recipient. */
function failed(cls: Class, rcpts = [A]): AttemptOutcome {
  const outcome: AttemptOutcome = { accepted: [], rejected: [], deferred: [], failure: refusal('', cls) };
  for (const rcpt of rcpts) (cls === 'permanent' ? outcome.rejected : outcome.deferred).push(refusal(rcpt, cls));
  return outcome;
}

function progress(attempts: number): MessageProgress {
  return { attempts, delivered: [], refused: [], receivedAt: RECEIVED.toISOString() };
}

function settle(outcome: AttemptOutcome, attemptsBefore: number, ageMs: number, holdLimitMs?: number) {
  const now = new Date(RECEIVED.getTime() + ageMs);
  return settleAttempt({ messageId: 'settle0001', progress: progress(attemptsBefore), outcome, policy: POLICY, now, attempt: { route: 'test', startedAt: now }, ...(holdLimitMs === undefined ? {} : { holdLimitMs }) });
}

interface Row {
  cls: Class;
  attemptsBefore: number;
  ageMs: number;
  holdLimitMs?: number;
  /** The decision, with `at` as a delay from now. */
  expect: { action: 'retry' | 'hold'; inMs: number } | { action: 'give-up' | 'done' };
}

const rows: Row[] = [
  // Transient: the schedule, entry by attempt, until maxAge; the cloud's hold limit does not apply.
  { cls: 'transient', attemptsBefore: 0, ageMs: 0, expect: { action: 'retry', inMs: MINUTE } },
  { cls: 'transient', attemptsBefore: 1, ageMs: MINUTE, expect: { action: 'retry', inMs: 5 * MINUTE } },
  { cls: 'transient', attemptsBefore: 9, ageMs: DAY, expect: { action: 'retry', inMs: 4 * HOUR } },
  { cls: 'transient', attemptsBefore: 9, ageMs: 2 * DAY, expect: { action: 'give-up' } },
  { cls: 'transient', attemptsBefore: 0, ageMs: 0, holdLimitMs: QUEUE_HOLD_LIMIT_MS, expect: { action: 'retry', inMs: MINUTE } },
  { cls: 'throttled', attemptsBefore: 0, ageMs: 0, expect: { action: 'retry', inMs: MINUTE } },
  { cls: 'throttled', attemptsBefore: 3, ageMs: 3 * DAY, expect: { action: 'give-up' } },
  // Permanent: given up at once, whatever the attempt or age.
  { cls: 'permanent', attemptsBefore: 0, ageMs: 0, expect: { action: 'give-up' } },
  { cls: 'permanent', attemptsBefore: 5, ageMs: DAY, holdLimitMs: QUEUE_HOLD_LIMIT_MS, expect: { action: 'give-up' } },
  // Needs the operator: held on the slow end from the first attempt, never expired by maxAge.
  { cls: 'config', attemptsBefore: 0, ageMs: 0, expect: { action: 'hold', inMs: 4 * HOUR } },
  { cls: 'config', attemptsBefore: 30, ageMs: 10 * DAY, expect: { action: 'hold', inMs: 4 * HOUR } },
  { cls: 'config', attemptsBefore: 300, ageMs: 60 * DAY, expect: { action: 'hold', inMs: 4 * HOUR } },
  // ...in the cloud until the next attempt would fall past the hold limit (the queue's retention).
  { cls: 'config', attemptsBefore: 0, ageMs: 0, holdLimitMs: QUEUE_HOLD_LIMIT_MS, expect: { action: 'hold', inMs: 4 * HOUR } },
  { cls: 'config', attemptsBefore: 70, ageMs: QUEUE_HOLD_LIMIT_MS - 4 * HOUR - 1, holdLimitMs: QUEUE_HOLD_LIMIT_MS, expect: { action: 'hold', inMs: 4 * HOUR } },
  { cls: 'config', attemptsBefore: 70, ageMs: QUEUE_HOLD_LIMIT_MS - 4 * HOUR, holdLimitMs: QUEUE_HOLD_LIMIT_MS, expect: { action: 'give-up' } },
];

describe('settleAttempt: failure class × attempt, age and hold limit', () => {
  for (const row of rows) {
    const where = row.holdLimitMs === undefined ? 'spool' : 'cloud';
    it(`${row.cls}, attempt ${row.attemptsBefore + 1}, ${Math.round(row.ageMs / HOUR)} h old (${where}) → ${row.expect.action}`, () => {
      const outcome = failed(row.cls);
      const now = RECEIVED.getTime() + row.ageMs;
      const { decision, progress: after, event, owed } = settle(outcome, row.attemptsBefore, row.ageMs, row.holdLimitMs);
      assert.equal(decision.action, row.expect.action);
      if ('inMs' in row.expect) {
        assert.equal('at' in decision && Date.parse(decision.at) - now, row.expect.inMs);
      }
      assert.equal(after.attempts, row.attemptsBefore + 1);
      assert.equal(event.attempt, row.attemptsBefore + 1);
      assert.deepEqual(event.decision, decision);
      assert.equal(event.kind, row.cls === 'throttled' ? 'transient' : row.cls);
      assert.equal(event.reply, REPLIES[row.cls].response);
      assert.equal(event.throttled, row.cls === 'throttled' ? true : undefined);
      assert.deepEqual(owed, [A]);
      if (row.cls === 'config') {
        assert.match(event.operatorAction ?? '', /SMTP\.SendAsApp/);
      }
      if (decision.action === 'give-up' && row.cls === 'config') {
        assert.match(decision.reason, /held for the operator for 13 days, the longest the queue can keep it$/);
      }
      if (decision.action === 'give-up' && row.cls !== 'config') {
        assert.equal(decision.reason, event.reason);
      }
    });
  }

  it('delivered to every recipient: done, progress records them', () => {
    const { decision, progress: after, event, owed } = settle({ accepted: [A, B], rejected: [], deferred: [] }, 0, 0);
    assert.deepEqual(decision, { action: 'done' });
    assert.deepEqual(after.delivered, [A, B]);
    assert.deepEqual(owed, []);
    assert.deepEqual([event.accepted, event.refused, event.deferred, event.reply], [[A, B], [], [], undefined]);
  });

  it('one recipient of two refused for good: done, the refused one owed (failed area / dead-letter queue)', () => {
    const { decision, progress: after, event, owed } = settle({ accepted: [A], rejected: [refusal(B, 'permanent')], deferred: [] }, 0, 0);
    assert.deepEqual(decision, { action: 'done' });
    assert.deepEqual(owed, [B]);
    assert.deepEqual(after.refused, [{ rcpt: B, reply: REPLIES.permanent.response, kind: 'permanent' }]);
    assert.deepEqual(event.refused, after.refused);
  });

  it('a refusal of an earlier attempt is still owed once the rest is delivered', () => {
    const first = settle({ accepted: [], rejected: [refusal(B, 'permanent')], deferred: [refusal(A, 'transient')] }, 0, 0);
    assert.equal(first.decision.action, 'retry');
    assert.deepEqual(first.owed, [A]);
    const second = settleAttempt({
      messageId: 'settle0001',
      progress: first.progress,
      outcome: { accepted: [A], rejected: [], deferred: [] },
      policy: POLICY,
      now: new Date(RECEIVED.getTime() + MINUTE),
      attempt: { route: 'test', startedAt: new Date(RECEIVED.getTime() + MINUTE) },
    });
    assert.deepEqual(second.decision, { action: 'done' });
    assert.deepEqual(second.owed, [B]);
    assert.equal(second.progress.attempts, 2);
  });

  it('one recipient deferred and one needing the operator: held (the slow end) for both', () => {
    const { decision, owed } = settle({ accepted: [], rejected: [], deferred: [refusal(A, 'transient'), refusal(B, 'config')] }, 0, 0);
    assert.equal(decision.action, 'hold');
    assert.deepEqual(owed, [A, B]);
  });
});
