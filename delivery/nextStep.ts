import type { MessageEnvelope } from '../contract/messageEnvelope.ts';
import type { AttemptOutcome, RecipientOutcome } from './deliverMessage.ts';
import { hasExpired, nextRetryDelay, type RetryPolicy } from './retryPolicy.ts';

export type NextStep =
  /** Every recipient is settled: delivered, or refused for good (recorded in `rejected`). */
  | { action: 'done'; rejected: RecipientOutcome[] }
  | { action: 'retry'; rcptTo: string[]; delayMs: number; reason: RecipientOutcome; throttled: boolean }
  /** Nothing more will be tried for `rcptTo`; the message goes to the failed area (or the DLQ). */
  | { action: 'fail'; rcptTo: string[]; reason: RecipientOutcome };

/**
 * What to do after an attempt; the retry rule every delivery path shares. Transient problems
 * are retried on the schedule until the message is older than maxAge; problems the operator
 * must fix are retried on the slow end of the schedule and kept, never expired, because mail
 * waiting for a SendAs grant or a new secret is still wanted once it is fixed.
 */
export function nextStep(
  envelope: Pick<MessageEnvelope, 'receivedAt'>,
  outcome: AttemptOutcome,
  attemptsSoFar: number,
  policy: RetryPolicy,
  now: Date = new Date(),
): NextStep {
  if (outcome.deferred.length === 0) {
    if (outcome.accepted.length === 0 && outcome.failure) {
      return { action: 'fail', rcptTo: outcome.rejected.map((r) => r.rcpt), reason: outcome.failure };
    }
    return { action: 'done', rejected: outcome.rejected };
  }
  const reason = outcome.failure ?? (outcome.deferred[0] as RecipientOutcome);
  const needsOperator = outcome.deferred.some((r) => r.classification.kind === 'config');
  if (!needsOperator && hasExpired(policy, new Date(envelope.receivedAt), now)) {
    return { action: 'fail', rcptTo: outcome.deferred.map((r) => r.rcpt), reason };
  }
  return {
    action: 'retry',
    rcptTo: outcome.deferred.map((r) => r.rcpt),
    delayMs: nextRetryDelay(policy, attemptsSoFar, needsOperator ? 'config' : 'transient'),
    reason,
    throttled: outcome.deferred.some((r) => r.classification.throttled),
  };
}
