import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { SendMessageCommand } from '@aws-sdk/client-sqs';
import { DLQ_ATTRIBUTES } from '../../contract/cloudResources.ts';
import { inlineQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { Submitter, SubmitResult } from '../../delivery/smtp/submission.ts';
import { BodyStore } from '../../functions/queue-delivery/bodyStore.ts';
import { DeadLetterQueue } from '../../functions/queue-delivery/deadLetters.ts';
import { DeliveryLedger } from '../../functions/queue-delivery/deliveryLedger.ts';
import { noMetrics } from '../../functions/queue-delivery/deliveryMetrics.ts';
import { MailboxPool } from '../../delivery/pool/mailboxPool.ts';
import { ClaimLostError, handleQueueRecord, RetryLaterError, type QueueRecordDeps } from '../../functions/queue-delivery/handleQueueRecord.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { scannerEnvelope } from '../../testbed/helpers/scannerEnvelope.ts';

/**
 * handleQueueRecord holds its claim while the submission runs (functions/queue-delivery/claimHeartbeat.ts)
 * and settles only as the lease's owner; and a retry goes only to the recipients still owed.
 * The ledger is dynalite; the submitter is scripted so the test decides when each submission ends.
 */

const LEASE_MS = 600;
const VISIBILITY_MS = 2_000;
// Beats every LEASE_MS / 3 = 200 ms.

interface Submission {
  to: string[];
  finish(result: SubmitResult): void;
}

/** A submitter whose submissions end when the test says, reading the body first like a real one. */
class ScriptedSubmitter implements Submitter {
  readonly submissions: Submission[] = [];
  private arrived: (() => void) | undefined;

  submit(message: { id: string; from: string; to: string[]; raw: NodeJS.ReadableStream }): Promise<SubmitResult> {
    return new Promise((resolve, reject) => {
      message.raw.on('error', reject);
      message.raw.resume();
      this.submissions.push({ to: [...message.to], finish: resolve });
      this.arrived?.();
    });
  }

  async next(count: number): Promise<Submission> {
    while (this.submissions.length < count) await new Promise<void>((resolve) => (this.arrived = resolve));
    return this.submissions[count - 1] as Submission;
  }

  async close(): Promise<void> {}
}

let counter = 0;
function queueRecord(rcptTo: string[]) {
  counter += 1;
  const body = Buffer.from(`From: scanner@contoso.com\r\nSubject: held ${counter}\r\n\r\nscan\r\n`);
  const envelope = scannerEnvelope(`heartbeat-${process.pid}-${counter}`, body, { rcptTo });
  return { envelope, record: { messageId: `sqs-${envelope.id}`, body: serializeQueueMessage(inlineQueueMessage(envelope, body)), receiptHandle: `receipt-${counter}`, receiveCount: 1 } };
}

describe('holding the claim while a record is delivered', () => {
  let dynamo: LocalDynamo;
  let ledger: DeliveryLedger;
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  const logger: DeliveryLogger = { debug() {}, info() {}, warn: (fields, message) => void warnings.push({ fields, message }), error() {} };

  before(async () => {
    dynamo = await startLocalDynamo();
    ledger = new DeliveryLedger(dynamo.client, dynamo.tableName);
  });
  after(async () => dynamo?.stop());

  function depsWith(submitter: Submitter) {
    const visibility: { receiptHandle: string; seconds: number; at: number }[] = [];
    const letters: SendMessageCommand['input'][] = [];
    const pool = new MailboxPool([{ mailbox: 'relay@contoso.com', submitter, route: 'upstream', connections: 3 }]);
    const deps: QueueRecordDeps = {
      ledger,
      bodies: new BodyStore({ send: async () => assert.fail('an inline body needs no S3') }),
      deadLetters: new DeadLetterQueue({ send: async (command: SendMessageCommand) => void letters.push(command.input) } as never, 'dlq'),
      pool: async () => pool,
      changeVisibility: async (receiptHandle, seconds) => void visibility.push({ receiptHandle, seconds, at: Date.now() }),
      metrics: noMetrics,
      logger,
      policy: { scheduleMs: [60_000], maxAgeMs: 3_600_000 },
      leaseMs: LEASE_MS,
      visibilityMs: VISIBILITY_MS,
      reportingHost: 'smarthost-test',
    };
    return { deps, visibility, letters };
  }

  test('a slow submission: the message is hidden again and the lease moved every beat; another claim finds it busy; it settles once', async () => {
    const submitter = new ScriptedSubmitter();
    const { deps, visibility } = depsWith(submitter);
    const { envelope, record } = queueRecord(['you@contoso.com']);
    const claimedAt = Date.now();
    const handled = handleQueueRecord(record, deps);
    const submission = await submitter.next(1);

    await pollUntil(() => visibility.length >= 4, 5_000, 'four heartbeats');
    assert.ok(Date.now() - claimedAt > LEASE_MS, 'the first lease has run out by now');
    assert.deepEqual(await ledger.claim(envelope.id, LEASE_MS), { status: 'busy' }, 'the lease was not extended');
    assert.deepEqual(
      [...new Set(visibility.map((v) => `${v.receiptHandle} ${v.seconds}`))],
      [`${record.receiptHandle} ${VISIBILITY_MS / 1000}`],
    );

    submission.finish({ accepted: ['you@contoso.com'], rejected: [], response: '250 2.0.0 OK' });
    assert.equal(await handled, 'delivered');
    const beats = visibility.length;
    await delay(3 * (LEASE_MS / 3));
    assert.equal(visibility.length, beats, 'the heartbeat went on after the attempt settled');
    assert.deepEqual(await ledger.claim(envelope.id, LEASE_MS), { status: 'done' });
  });

  test('a lease another worker took over: logged, the accepted recipients recorded, nothing settled', async () => {
    const submitter = new ScriptedSubmitter();
    const { deps, visibility } = depsWith(submitter);
    const { envelope, record } = queueRecord(['you@contoso.com']);
    const handled = handleQueueRecord(record, deps);
    const submission = await submitter.next(1);

    // Another worker whose clock is past this lease's end claims the message.
    const other = await ledger.claim(envelope.id, 60_000, Date.now() + 10_000);
    assert.equal(other.status, 'claimed');
    await pollUntil(() => warnings.some((w) => w.fields.messageId === envelope.id && /another worker holds the claim/.test(w.message)), 5_000, 'the heartbeat to notice');
    const beats = visibility.length;

    submission.finish({ accepted: ['you@contoso.com'], rejected: [], response: '250 2.0.0 OK' });
    await assert.rejects(handled, ClaimLostError);
    assert.equal(visibility.length, beats, 'the message was hidden again after the claim was lost');
    assert.deepEqual(await ledger.readHistory(envelope.id), [], 'the attempt was settled though the claim was lost');
    assert.deepEqual(await ledger.claim(envelope.id, 60_000), { status: 'busy' }, "the other worker's lease was released");
    if (other.status !== 'claimed') return;
    assert.equal(await ledger.release(envelope.id, other.owner), true);
    const later = await ledger.claim(envelope.id, 60_000);
    assert.deepEqual(later.status === 'claimed' && later.deliveredRcpts, ['you@contoso.com']);
  });

  test('a recipient refused for good is not sent to again on the transient retry of another; a redrive sends only to it', async () => {
    const submitter = new ScriptedSubmitter();
    const { deps, letters } = depsWith(submitter);
    const { record } = queueRecord(['gone@contoso.com', 'you@contoso.com']);

    const first = handleQueueRecord(record, deps);
    (await submitter.next(1)).finish({
      accepted: [],
      rejected: [
        { rcpt: 'gone@contoso.com', failure: { responseCode: 550, response: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', command: 'RCPT TO', message: 'refused' } },
        { rcpt: 'you@contoso.com', failure: { responseCode: 451, response: '451 4.7.500 Server busy. Please try again later', command: 'RCPT TO', message: 'busy' } },
      ],
    });
    await assert.rejects(first, RetryLaterError);

    const retry = handleQueueRecord({ ...record, receiveCount: 2 }, deps);
    const second = await submitter.next(2);
    assert.deepEqual(second.to, ['you@contoso.com']);
    second.finish({ accepted: ['you@contoso.com'], rejected: [], response: '250 2.0.0 OK' });
    assert.equal(await retry, 'dead-lettered');
    assert.equal(letters.length, 1);
    assert.equal(letters[0]?.MessageAttributes?.[DLQ_ATTRIBUTES.reason]?.StringValue, 'recipients refused: gone@contoso.com');

    // The operator fixed the address and redrove the message.
    const redrive = handleQueueRecord({ ...record, receiveCount: 1 }, deps);
    const third = await submitter.next(3);
    assert.deepEqual(third.to, ['gone@contoso.com']);
    third.finish({ accepted: ['gone@contoso.com'], rejected: [], response: '250 2.0.0 OK' });
    assert.equal(await redrive, 'delivered');
  });
});
