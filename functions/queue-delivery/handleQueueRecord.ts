import type { Readable } from 'node:stream';
import type { QueueMessage } from '../../contract/queueMessage.ts';
import { parseQueueMessage, QueueMessageError } from '../../contract/queueMessage.ts';
import { CLAIM_MARGIN_MS, MAX_VISIBILITY_SECONDS, QUEUE_HOLD_LIMIT_MS } from '../../contract/cloudResources.ts';
import { deliverMessage } from '../../delivery/deliverMessage.ts';
import { logAttempt } from '../../delivery/history/logAttempt.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { RetryPolicy } from '../../delivery/retryPolicy.ts';
import { settleAttempt } from '../../delivery/settle/settleAttempt.ts';
import type { Submitter } from '../../delivery/smtp/submission.ts';
import type { MailboxPool, PoolLease, PoolMember, PoolWait, RecipientReservation } from '../../delivery/pool/mailboxPool.ts';
import { RepeatedFailureGuard } from '../../delivery/repeatedFailureGuard.ts';
import { bodyCheckFailure, type BodyStore } from './bodyStore.ts';
import { ClaimHeartbeat } from './claimHeartbeat.ts';
import type { DeadLetterQueue } from './deadLetters.ts';
import { LeaseLostError, type DeliveryLedger } from './deliveryLedger.ts';
import type { DeliveryMetrics } from './deliveryMetrics.ts';
import { cloudFailureNotice, cloudNoticeAddresses } from './failureNotice.ts';
import { readHeaderSection } from '../../delivery/notices/originalHeaders.ts';
import { submitGeneratedMail } from '../../delivery/notices/submitGeneratedMail.ts';
import type { NoticeKind } from '../../delivery/notices/buildFailureNotice.ts';
import { MAILBOX_BLOCK_MS } from '../../delivery/classifyReply.ts';

/** The message goes back to the queue; its visibility timeout already says when it comes back. */
export class RetryLaterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

/**
 * The claim lapsed while the record was delivered and another invocation holds it now: this one
 * settles nothing (the holder does); the message comes back when its visibility ends.
 */
export class ClaimLostError extends RetryLaterError {
  constructor(messageId: string) {
    super(`message ${messageId}: another invocation holds its claim now; this attempt did not settle it`);
    this.name = 'ClaimLostError';
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
  /** The mailboxes mail leaves through (a secret's: read again once its TTL passed); a failure fails the attempt with its reason. */
  pool: () => Promise<MailboxPool>;
  changeVisibility: (receiptHandle: string, seconds: number) => Promise<void>;
  metrics: DeliveryMetrics;
  logger: DeliveryLogger;
  policy: RetryPolicy;
  /**
   * How long a claim keeps other invocations off the message; the heartbeat moves its end this
   * far ahead while the record is delivered.
   */
  leaseMs: number;
  /** How long each heartbeat hides the message again. @default leaseMs */
  visibilityMs?: number;
  /** Epoch ms no claim reaches beyond (the Lambda: its invocation's deadline plus CLAIM_MARGIN_MS). */
  claimDeadline?: number;
  /**
   * The cloud's admin address: it gets the failure notice about every dead-lettered message, besides
   * those the agent named in the envelope (noticeTo). The Lambda: failureNoticeTo; the worker: notices.admin.
   */
  failureNoticeTo?: string;
  /**
   * How long after its arrival a message held for the operator gets its "Delayed" notice, sent at
   * the first held attempt past it (ms); absent: none.
   */
  delayedNoticeAfterMs?: number;
  /** The name failure notices give as their Reporting-MTA (the Lambda: its function's name; the worker: its host's). */
  reportingHost: string;
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
  const claimNow = Date.now();
  const leaseMs = deps.claimDeadline === undefined ? deps.leaseMs : Math.max(0, Math.min(deps.leaseMs, deps.claimDeadline - claimNow));
  const claim = await ledger.claim(envelope.id, leaseMs, claimNow);
  if (claim.status === 'done') {
    await bodies.discard(message).catch(() => undefined);
    logger.info({ messageId: envelope.id, receiveCount: record.receiveCount }, 'already delivered, not sent again');
    return 'duplicate';
  }
  if (claim.status === 'busy') {
    await deps.changeVisibility(record.receiptHandle, 60);
    throw new RetryLaterError(`message ${envelope.id} is being delivered by another invocation`);
  }
  const { owner } = claim;
  // Those still owed, as the last settled attempt left them: a recipient refused for good on an
  // earlier attempt is not sent to again on a transient retry (a redrive sends to the refused).
  const rcptTo = (claim.pendingRcpts ?? envelope.rcptTo).filter((rcpt) => !claim.deliveredRcpts.includes(rcpt));
  if (rcptTo.length === 0) {
    await ledger.markDone(envelope.id);
    await bodies.discard(message).catch(() => undefined);
    return 'duplicate';
  }

  const heartbeat = new ClaimHeartbeat(
    { leaseMs: deps.leaseMs, visibilityMs: deps.visibilityMs ?? deps.leaseMs, ...(deps.claimDeadline === undefined ? {} : { deadline: deps.claimDeadline }) },
    { extendVisibility: (seconds) => deps.changeVisibility(record.receiptHandle, seconds), extendLease: (until) => ledger.extendLease(envelope.id, owner, until) },
    logger,
    envelope.id,
  ).start();

  // The mailbox it leaves through, chosen by its sendAs exactly as on the office box (MailboxPool).
  const chosen = await chooseMailbox(envelope, rcptTo, deps).catch(async (error: unknown) => {
    await heartbeat.stop();
    await ledger.release(envelope.id, owner, { notAnAttempt: true });
    throw error;
  });
  if ('wait' in chosen) {
    // Deferred, not failed: no attempt is counted and the message comes back when the budget opens.
    await heartbeat.stop();
    await ledger.release(envelope.id, owner, { notAnAttempt: true });
    const { retryAt, reason } = chosen.wait;
    const at = retryAt === Infinity ? Date.now() + (deps.policy.scheduleMs[0] ?? 60_000) : retryAt;
    const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.ceil((at - Date.now()) / 1000)));
    await deps.changeVisibility(record.receiptHandle, seconds);
    logger.warn({ messageId: envelope.id, reason, retryInSeconds: seconds }, 'deferred: no mailbox it may use has room');
    deps.metrics.deferred();
    throw new RetryLaterError(`message ${envelope.id} deferred: ${reason}`);
  }
  const { submitter, lease, recipients } = chosen;
  const member = lease?.member;
  let sent = false;
  const giveBack = async (accepted: readonly string[]) => {
    recipients?.release(rcptTo.filter((rcpt) => !accepted.includes(rcpt)));
    if (accepted.length === 0 && !sent) await lease?.cancel();
    else await lease?.finish(accepted.length, Date.now()); // the slot counts from the answer, as Exchange does
  };

  let body: Readable;
  try {
    body = await bodies.open(message);
  } catch (error) {
    await heartbeat.stop();
    await giveBack([]);
    // Nothing was submitted: the claim is no delivery attempt.
    await ledger.release(envelope.id, owner, { notAnAttempt: true });
    if ((error as Error).name === 'NoSuchKey' || error instanceof QueueMessageError) {
      return deadLetter(record, message, deps, { reason: `the message body cannot be read: ${(error as Error).message}`, kind: 'permanent', rcpts: rcptTo, noticedTo: claim.noticedTo });
    }
    await deps.changeVisibility(record.receiptHandle, Math.round((deps.policy.scheduleMs[0] ?? 60_000) / 1000));
    throw new RetryLaterError(`message ${envelope.id}: body not readable yet (${(error as Error).name})`);
  }

  const mailbox = member?.mailbox;
  const startedAt = new Date();
  let outcome: Awaited<ReturnType<typeof deliverMessage>>;
  try {
    sent = true;
    // The ledger's claim counts this attempt already.
    outcome = await deliverMessage({ envelope, rcptTo, openBody: () => body, mailbox, earlierAttempts: claim.attempts - 1 }, submitter, logger);
  } catch (error) {
    await giveBack([]);
    throw error;
  } finally {
    await heartbeat.stop();
  }
  await giveBack(outcome.accepted);
  const corrupted = bodyCheckFailure(body);
  if (corrupted && outcome.accepted.length === 0) {
    // The body broke the queue message's promise before the final dot: no delivery attempt either.
    await ledger.release(envelope.id, owner, { notAnAttempt: true });
    return deadLetter(record, message, deps, { reason: `the message body failed its check: ${corrupted.message}`, kind: 'permanent', rcpts: rcptTo, noticedTo: claim.noticedTo });
  }
  // A fact whoever holds the claim: those recipients have the message.
  await ledger.recordDelivered(envelope.id, outcome.accepted);
  if (heartbeat.lost) {
    throw new ClaimLostError(envelope.id);
  }
  const settled = settleAttempt({
    messageId: envelope.id,
    // The ledger's claim counted this attempt; the settle step counts it again from the one before.
    progress: { attempts: claim.attempts - 1, delivered: claim.deliveredRcpts, refused: claim.refused, receivedAt: envelope.receivedAt },
    outcome,
    policy: deps.policy,
    now: new Date(),
    attempt: { route: member?.route ?? 'upstream', mailbox, startedAt },
    holdLimitMs: QUEUE_HOLD_LIMIT_MS,
  });
  const { decision, progress, event } = settled;
  try {
    await ledger.recordSettlement(envelope.id, owner, { history: [...claim.history, event], refused: progress.refused, pending: settled.owed });
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    // The lease ran out between two beats and another invocation claimed the message.
    logger.warn({ messageId: envelope.id }, 'another worker holds the claim on this message now; this attempt will not settle it');
    throw new ClaimLostError(envelope.id);
  }
  logAttempt(logger, settled, 'dead-letter queue');
  if (member && (event.mailboxBlocked || event.throttled)) {
    // Only this mailbox waits, in every instance (the shared budget store carries the pause), as on the office box.
    const pauseMs = event.mailboxBlocked ? MAILBOX_BLOCK_MS : (deps.policy.scheduleMs[0] ?? 60_000);
    (await deps.pool()).pause(member, pauseMs);
    logger.warn({ messageId: envelope.id, mailbox: member.mailbox, pauseMs, mailboxBlocked: event.mailboxBlocked === true }, event.mailboxBlocked ? 'Exchange Online blocked the mailbox, holding its deliveries' : 'upstream is throttling the mailbox, holding its deliveries');
  }

  if (decision.action === 'done' && progress.refused.length === 0) {
    await ledger.markDone(envelope.id);
    await bodies.discard(message).catch((error: unknown) => logger.warn({ messageId: envelope.id, err: (error as Error).name }, 'could not delete the delivered body from S3'));
    metrics.delivered(Date.now() - Date.parse(envelope.receivedAt), envelope.size);
    return 'delivered';
  }
  await ledger.release(envelope.id, owner);
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
      noticedTo: claim.noticedTo,
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
      noticedTo: claim.noticedTo,
    });
  }
  // Retry or hold: SQS brings the message back when its visibility ends (at most 12 h away;
  // a later attempt is then reached in steps).
  const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.round((Date.parse(decision.at) - Date.now()) / 1000)));
  await deps.changeVisibility(record.receiptHandle, seconds);
  metrics.retried(event.throttled === true);
  if (decision.action === 'hold') {
    metrics.heldForOperator();
    if (deps.delayedNoticeAfterMs !== undefined && Date.now() - Date.parse(envelope.receivedAt) >= deps.delayedNoticeAfterMs) {
      await sendCloudNotices(message, deps, {
        kind: 'delayed',
        reason: event.reason ?? 'held until the admin fixes the cause below',
        ...(event.reply ? { reply: event.reply } : {}),
        ...(event.operatorAction ? { operatorAction: event.operatorAction } : {}),
        rcpts: settled.owed,
        noticedTo: claim.delayNoticedTo,
      }).catch((error: unknown) => logger.warn({ messageId: envelope.id, err: (error as Error).message }, 'could not send the delayed notice'));
    }
  }
  throw new RetryLaterError(`message ${envelope.id}: ${event.reply ?? decision.action}`);
}

async function deadLetter(
  record: QueueRecord,
  message: QueueMessage,
  deps: QueueRecordDeps,
  failure: {
    reason: string;
    reply?: string;
    kind: 'transient' | 'permanent' | 'config';
    operatorAction?: string;
    rcpts: string[];
    logged?: boolean;
    /** Addresses the ledger says got the notice already (an earlier receive of this record, a redrive). */
    noticedTo: string[];
  },
): Promise<RecordResult> {
  const { envelope } = message;
  const reason = failure.operatorAction ? `${failure.reason}. Fix: ${failure.operatorAction}` : failure.reason;
  await deps.deadLetters.put({ body: record.body, reason, reply: failure.reply, kind: failure.kind });
  deps.metrics.failed(failure.kind);
  if (!failure.logged) {
    deps.logger.error({ messageId: envelope.id, kind: failure.kind, reply: failure.reply, reason: failure.reason, operatorAction: failure.operatorAction }, 'moved to the dead-letter queue');
  }
  // The message is in the dead-letter queue already: nothing about its notice may send the record back.
  await sendCloudNotices(message, deps, { ...failure, kind: 'undeliverable' }).catch((error: unknown) =>
    deps.logger.warn({ messageId: envelope.id, err: (error as Error).message }, 'could not send the failure notice'),
  );
  return 'dead-lettered';
}

/**
 * The RFC 3464 notice for a dead-lettered message, one to each address of cloudNoticeAddresses
 * that has not had it, through the same upstream. The original's header is read again (an S3 body:
 * only its first bytes); a body that cannot be read gives a notice without it. Each notice sent is
 * recorded in the ledger as soon as the upstream took it, so a redelivery of this record (a crash
 * before SQS deleted it) or a redrive that fails again sends that address no second one; only a
 * crash between the upstream's 250 and that one DynamoDB write can. A notice that fails is logged
 * and recorded, not retried.
 */
async function sendCloudNotices(
  message: QueueMessage,
  deps: QueueRecordDeps,
  failure: { kind: NoticeKind; reason: string; reply?: string; operatorAction?: string; rcpts: string[]; noticedTo: string[] },
): Promise<void> {
  const { envelope } = message;
  const { logger } = deps;
  const owed = cloudNoticeAddresses(envelope, deps.failureNoticeTo).filter((to) => {
    const already = failure.noticedTo.includes(to.toLowerCase());
    if (already) logger.info({ messageId: envelope.id, kind: failure.kind, to }, 'failure notice sent before, not again');
    return !already;
  });
  if (owed.length === 0) return;
  const headerSection = await deps.bodies.open(message).then(readHeaderSection, () => Buffer.alloc(0)).catch(() => Buffer.alloc(0));
  // Through the pool's first mailbox, as the office box's alerts and notices.
  const first = (await deps.pool()).members[0] as PoolMember;
  for (const to of owed) {
    const notice = cloudFailureNotice(envelope, headerSection, {
      kind: failure.kind,
      from: first.mailbox ?? deps.failureNoticeTo ?? to,
      to,
      reason: failure.reason,
      ...(failure.reply ? { reply: failure.reply } : {}),
      ...(failure.operatorAction ? { fix: failure.operatorAction } : {}),
      rcpts: failure.rcpts,
      reportingHost: deps.reportingHost,
      now: new Date(),
    });
    if ('suppressed' in notice) {
      // The loop rules look at the original alone: nobody gets one.
      logger.info({ messageId: envelope.id, reason: notice.suppressed }, 'no failure notice');
      return;
    }
    let sent: boolean;
    let detail: string;
    try {
      await submitGeneratedMail(first.submitter, notice.mail);
      logger.info({ messageId: envelope.id, kind: failure.kind, to, noticeMessageId: notice.messageId }, 'failure notice sent');
      [sent, detail] = [true, notice.messageId];
    } catch (error) {
      logger.warn({ messageId: envelope.id, kind: failure.kind, to, err: (error as Error).message }, 'could not send the failure notice');
      [sent, detail] = [false, `the upstream refused it: ${(error as Error).message}`];
    }
    await deps.ledger
      .recordNotice({ type: 'notice', kind: failure.kind, messageId: envelope.id, at: new Date().toISOString(), to, sent, detail })
      .catch((error: unknown) =>
        logger.warn({ messageId: envelope.id, to, err: (error as Error).name }, sent ? 'failure notice sent but not recorded: a redelivery of this record would send it again' : 'could not record the failed notice'),
      );
  }
}

/**
 * How long a record waits in the function for its mailbox to open (a per-minute slot opens within
 * a minute) before it is deferred: waiting costs less than coming back, since every receive counts
 * towards the queue's maxReceiveCount. `smarthost worker` waits as long for a busy connection.
 */
export const MAILBOX_WAIT_MS = 60_000;

type ChosenMailbox =
  | { wait: PoolWait }
  | { submitter: Submitter; lease?: PoolLease; recipients?: RecipientReservation };

/** A lease on the mailbox this message may use now, waiting a little for one; or the wait, with its reason. */
async function chooseMailbox(envelope: QueueMessage['envelope'], rcptTo: string[], deps: QueueRecordDeps): Promise<ChosenMailbox> {
  let pool: MailboxPool;
  try {
    pool = await deps.pool();
  } catch (error) {
    // The secret cannot be read or is not valid: the attempt fails with why, as a submission would.
    return { submitter: { submit: () => Promise.reject(error as Error), close: async () => undefined } };
  }
  const now = Date.now();
  const untilDeadline = deps.claimDeadline === undefined ? Infinity : (deps.claimDeadline - CLAIM_MARGIN_MS - now) / 2;
  // A busy connection is waited for as long as the invocation allows: the SMTP session ahead is
  // already sending, and coming back would cost a receive.
  const busyWaitMs = Math.max(0, untilDeadline === Infinity ? MAILBOX_WAIT_MS : untilDeadline);
  const acquired = await pool.acquire(RepeatedFailureGuard.classOf(envelope), rcptTo.length, Math.max(0, Math.min(MAILBOX_WAIT_MS, untilDeadline)), busyWaitMs);
  if ('retryAt' in acquired) return { wait: acquired };
  const recipients = pool.takeRecipients(rcptTo);
  if (recipients.openAt > Date.now()) {
    await acquired.lease.cancel();
    return { wait: { retryAt: recipients.openAt, reason: `a recipient reached Exchange's receiving limit (messages per hour to one address) until ${new Date(recipients.openAt).toISOString()}` } };
  }
  return { submitter: acquired.lease.member.submitter, lease: acquired.lease, recipients };
}
