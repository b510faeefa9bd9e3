import type { AttemptOutcome, RecipientOutcome } from '../deliverMessage.ts';
import type { AttemptEvent, RecipientReply, SettleDecision } from '../history/deliveryEvent.ts';
import { hasExpired, nextRetryDelay, type RetryPolicy } from '../retryPolicy.ts';

/** What the runtime keeps about a message between attempts (spool state file, ledger item). */
export interface MessageProgress {
  /** Attempts made so far, counted here: never the queue's receive count. */
  attempts: number;
  /** Recipients that have the message. */
  delivered: string[];
  /** Recipients refused for good, over all attempts. */
  refused: RecipientReply[];
  /** ISO 8601: when the agent accepted the message (maxAge and the hold limit count from here). */
  receivedAt: string;
}

export interface SettleInput {
  messageId: string;
  progress: MessageProgress;
  outcome: AttemptOutcome;
  policy: RetryPolicy;
  now: Date;
  /** The attempt itself, for its event. */
  attempt: { route: string; mailbox?: string; startedAt: Date };
  /**
   * How long a needs-operator message may be held, counted from receivedAt; absent: for ever (the
   * spool). The cloud passes QUEUE_HOLD_LIMIT_MS, since the queue drops what it keeps longer.
   */
  holdLimitMs?: number;
}

export interface Settlement {
  decision: SettleDecision;
  progress: MessageProgress;
  /** The recipients still owed the message: the next attempt's (retry, hold), or those given up on. */
  owed: string[];
  event: AttemptEvent;
}

/**
 * What happens after an attempt; the one rule of every runtime (spool delivery loop, SQS poller,
 * Lambda), which only carry the decision out in their storage. Transient problems are retried on
 * the schedule until the message is older than maxAge; problems the operator must fix are held
 * and retried on the slow end of the schedule, never expired by maxAge, because mail waiting for
 * a SendAs grant or a new secret is still wanted once it is fixed (up to `holdLimitMs`).
 */
export function settleAttempt(input: SettleInput): Settlement {
  const { outcome, policy, now } = input;
  const refusedNow = outcome.rejected.map(replyOf);
  // A recipient tried again (a resend or redrive after the operator fixed it) is judged anew.
  const triedNow = new Set([...outcome.accepted, ...outcome.rejected.map((r) => r.rcpt), ...outcome.deferred.map((r) => r.rcpt)]);
  const progress: MessageProgress = {
    attempts: input.progress.attempts + 1,
    delivered: [...input.progress.delivered, ...outcome.accepted.filter((r) => !input.progress.delivered.includes(r))],
    refused: [...input.progress.refused.filter((r) => !triedNow.has(r.rcpt)), ...refusedNow],
    receivedAt: input.progress.receivedAt,
  };
  const decisive = outcome.failure ?? outcome.deferred[0] ?? outcome.rejected[0];
  const deferredRcpts = outcome.deferred.map((r) => r.rcpt);
  const notAccepted = [...outcome.rejected, ...outcome.deferred].map((r) => r.rcpt);
  const settle = (decision: SettleDecision, owed: string[]): Settlement => ({ decision, progress, owed, event: eventOf(input, progress.attempts, decisive, decision) });

  if (outcome.deferred.length === 0) {
    if (outcome.accepted.length === 0 && outcome.failure) {
      return settle({ action: 'give-up', reason: outcome.failure.classification.reason }, notAccepted);
    }
    return settle({ action: 'done' }, progress.refused.map((r) => r.rcpt));
  }
  const reason = (decisive as RecipientOutcome).classification.reason;
  const needsOperator = outcome.deferred.some((r) => r.classification.kind === 'config');
  const receivedAt = new Date(progress.receivedAt);
  if (!needsOperator && hasExpired(policy, receivedAt, now)) {
    return settle({ action: 'give-up', reason }, deferredRcpts);
  }
  const at = new Date(now.getTime() + nextRetryDelay(policy, progress.attempts, needsOperator ? 'config' : 'transient'));
  if (!needsOperator) {
    return settle({ action: 'retry', at: at.toISOString() }, deferredRcpts);
  }
  if (input.holdLimitMs !== undefined && at.getTime() - receivedAt.getTime() >= input.holdLimitMs) {
    const days = Math.round(input.holdLimitMs / 86_400_000);
    return settle({ action: 'give-up', reason: `${reason}; held for the operator for ${days} days, the longest the queue can keep it` }, deferredRcpts);
  }
  return settle({ action: 'hold', at: at.toISOString() }, deferredRcpts);
}

function replyOf(outcome: RecipientOutcome): RecipientReply {
  return { rcpt: outcome.rcpt, reply: outcome.reply, kind: outcome.classification.kind };
}

function eventOf(input: SettleInput, attempt: number, decisive: RecipientOutcome | undefined, decision: SettleDecision): AttemptEvent {
  const { outcome } = input;
  const event: AttemptEvent = {
    type: 'attempt',
    messageId: input.messageId,
    at: input.now.toISOString(),
    attempt,
    route: input.attempt.route,
    startedAt: input.attempt.startedAt.toISOString(),
    durationMs: Math.max(0, input.now.getTime() - input.attempt.startedAt.getTime()),
    accepted: [...outcome.accepted],
    refused: outcome.rejected.map(replyOf),
    deferred: outcome.deferred.map(replyOf),
    decision,
  };
  if (input.attempt.mailbox) event.mailbox = input.attempt.mailbox;
  if (decisive) {
    event.reply = decisive.reply;
    event.kind = decisive.classification.kind;
    event.reason = decisive.classification.reason;
    if (decisive.classification.operatorAction) event.operatorAction = decisive.classification.operatorAction;
  }
  if (outcome.deferred.some((r) => r.classification.throttled)) event.throttled = true;
  if (outcome.deferred.some((r) => r.classification.mailboxBlocked)) event.mailboxBlocked = true;
  if (outcome.deferred.some((r) => r.classification.maybeSent)) event.maybeSent = true;
  return event;
}
