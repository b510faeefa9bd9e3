import type { Readable } from 'node:stream';
import type { QueueMessage } from '../../contract/queueMessage.ts';
import { parseQueueMessage, QueueMessageError } from '../../contract/queueMessage.ts';
import { QUEUE_HOLD_LIMIT_MS } from '../../contract/cloudResources.ts';
import { deliverMessage } from '../../delivery/deliverMessage.ts';
import { logAttempt } from '../../delivery/history/logAttempt.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { RetryPolicy } from '../../delivery/retryPolicy.ts';
import { settleAttempt } from '../../delivery/settle/settleAttempt.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import { bodyCheckFailure, type BodyStore } from './bodyStore.ts';
import type { DeadLetterQueue } from './deadLetters.ts';
import type { DeliveryLedger } from './deliveryLedger.ts';
import type { DeliveryMetrics } from './deliveryMetrics.ts';
import { failureNotice, sendFailureNotice } from './failureNotice.ts';

/** SQS's longest visibility timeout: a retry further away waits this long, then again. */
const MAX_VISIBILITY_SECONDS = 12 * 3600;

/** The message goes back to the queue; its visibility timeout already says when it comes back. */
export class RetryLaterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

export interface QueueRecord {
  messageId: string;
  body: string;
  receiptHandle: string;
  /** ApproximateReceiveCount, for logs only: it counts busy redeliveries too, so attempts are counted by the ledger. */
  receiveCount: number;
}

export interface QueueRecordDeps {
  ledger: DeliveryLedger;
  bodies: BodyStore;
  deadLetters: DeadLetterQueue;
  submitter: Submitter;
  /** The mailbox the upstream authenticates as (operator hints, failure notices). */
  mailbox: () => Promise<string | undefined>;
  changeVisibility: (receiptHandle: string, seconds: number) => Promise<void>;
  metrics: DeliveryMetrics;
  logger: DeliveryLogger;
  policy: RetryPolicy;
  /** How long a claim keeps other invocations off the message; at least the function timeout. */
  leaseMs: number;
  /** Where a short non-delivery notice goes for each failed message, if anywhere. */
  failureNoticeTo?: string;
}

export type RecordResult = 'delivered' | 'duplicate' | 'dead-lettered';

/**
 * One SQS record through the shared delivery core; the same for the Lambda and `smarthost worker`.
 * Resolves when the record may be deleted from the queue, throws RetryLaterError when it must
 * come back later.
 */
export async function handleQueueRecord(record: QueueRecord, deps: QueueRecordDeps): Promise<RecordResult> {
  const { ledger, bodies, deadLetters, logger, metrics } = deps;
  let message: QueueMessage;
  try {
    message = parseQueueMessage(record.body);
  } catch (error) {
    const reason = `not a smarthost queue message: ${(error as Error).message}`;
    await deadLetters.put({ body: record.body, reason, kind: 'malformed' });
    metrics.failed('malformed');
    logger.error({ sqsMessageId: record.messageId, reason }, 'malformed queue message moved to the dead-letter queue');
    return 'dead-lettered';
  }
  const { envelope } = message;
  const claim = await ledger.claim(envelope.id, deps.leaseMs);
  if (claim.status === 'done') {
    await bodies.discard(message).catch(() => undefined);
    logger.info({ messageId: envelope.id, receiveCount: record.receiveCount }, 'already delivered, not sent again');
    return 'duplicate';
  }
  if (claim.status === 'busy') {
    await deps.changeVisibility(record.receiptHandle, 60);
    throw new RetryLaterError(`message ${envelope.id} is being delivered by another invocation`);
  }
  const rcptTo = envelope.rcptTo.filter((rcpt) => !claim.deliveredRcpts.includes(rcpt));
  if (rcptTo.length === 0) {
    await ledger.markDone(envelope.id);
    await bodies.discard(message).catch(() => undefined);
    return 'duplicate';
  }

  let body: Readable;
  try {
    body = await bodies.open(message);
  } catch (error) {
    await ledger.release(envelope.id);
    if ((error as Error).name === 'NoSuchKey' || error instanceof QueueMessageError) {
      return deadLetter(record, message, deps, { reason: `the message body cannot be read: ${(error as Error).message}`, kind: 'permanent', rcpts: rcptTo });
    }
    await deps.changeVisibility(record.receiptHandle, Math.round((deps.policy.scheduleMs[0] ?? 60_000) / 1000));
    throw new RetryLaterError(`message ${envelope.id}: body not readable yet (${(error as Error).name})`);
  }

  const mailbox = await deps.mailbox().catch(() => undefined);
  const startedAt = new Date();
  const outcome = await deliverMessage({ envelope, rcptTo, openBody: () => body, mailbox }, deps.submitter, logger);
  const corrupted = bodyCheckFailure(body);
  if (corrupted && outcome.accepted.length === 0) {
    await ledger.release(envelope.id);
    return deadLetter(record, message, deps, { reason: `the message body failed its check: ${corrupted.message}`, kind: 'permanent', rcpts: rcptTo });
  }
  await ledger.recordDelivered(envelope.id, outcome.accepted);
  const settled = settleAttempt({
    messageId: envelope.id,
    // The ledger's claim counted this attempt; the settle step counts it again from the one before.
    progress: { attempts: claim.attempts - 1, delivered: claim.deliveredRcpts, refused: claim.refused, receivedAt: envelope.receivedAt },
    outcome,
    policy: deps.policy,
    now: new Date(),
    attempt: { route: 'upstream', mailbox, startedAt },
    holdLimitMs: QUEUE_HOLD_LIMIT_MS,
  });
  const { decision, progress, event } = settled;
  await ledger.recordSettlement(envelope.id, { history: [...claim.history, event], refused: progress.refused });
  logAttempt(logger, settled, 'dead-letter queue');

  if (decision.action === 'done' && progress.refused.length === 0) {
    await ledger.markDone(envelope.id);
    await bodies.discard(message).catch((error: unknown) => logger.warn({ messageId: envelope.id, err: (error as Error).name }, 'could not delete the delivered body from S3'));
    metrics.delivered(Date.now() - Date.parse(envelope.receivedAt), envelope.size);
    return 'delivered';
  }
  await ledger.release(envelope.id);
  if (decision.action === 'done') {
    // Delivered to some; the refused ones wait in the dead-letter queue (a redrive sends only to them).
    metrics.delivered(Date.now() - Date.parse(envelope.receivedAt), envelope.size);
    const first = progress.refused[0];
    return deadLetter(record, message, deps, {
      reason: `recipients refused: ${settled.owed.join(', ')}`,
      reply: first?.reply,
      kind: 'permanent',
      rcpts: settled.owed,
      logged: true,
    });
  }
  if (decision.action === 'give-up') {
    return deadLetter(record, message, deps, {
      reason: decision.reason,
      reply: event.reply,
      kind: event.kind ?? 'permanent',
      operatorAction: event.operatorAction,
      rcpts: settled.owed,
      logged: true,
    });
  }
  // Retry or hold: SQS brings the message back when its visibility ends (at most 12 h away;
  // a later attempt is then reached in steps).
  const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.round((Date.parse(decision.at) - Date.now()) / 1000)));
  await deps.changeVisibility(record.receiptHandle, seconds);
  metrics.retried(event.throttled === true);
  throw new RetryLaterError(`message ${envelope.id}: ${event.reply ?? decision.action}`);
}

async function deadLetter(
  record: QueueRecord,
  message: QueueMessage,
  deps: QueueRecordDeps,
  failure: { reason: string; reply?: string; kind: 'transient' | 'permanent' | 'config'; operatorAction?: string; rcpts: string[]; logged?: boolean },
): Promise<RecordResult> {
  const { envelope } = message;
  const reason = failure.operatorAction ? `${failure.reason}. Fix: ${failure.operatorAction}` : failure.reason;
  await deps.deadLetters.put({ body: record.body, reason, reply: failure.reply, kind: failure.kind });
  deps.metrics.failed(failure.kind);
  if (!failure.logged) {
    deps.logger.error({ messageId: envelope.id, kind: failure.kind, reply: failure.reply, reason: failure.reason, operatorAction: failure.operatorAction }, 'moved to the dead-letter queue');
  }
  if (deps.failureNoticeTo) {
    const from = (await deps.mailbox().catch(() => undefined)) ?? deps.failureNoticeTo;
    const notice = failureNotice(envelope, { from, to: deps.failureNoticeTo, reason, reply: failure.reply, rcpts: failure.rcpts });
    await sendFailureNotice(deps.submitter, notice, envelope.id).catch((error: unknown) =>
      deps.logger.warn({ messageId: envelope.id, err: (error as Error).message }, 'could not send the failure notice'),
    );
  }
  return 'dead-lettered';
}
