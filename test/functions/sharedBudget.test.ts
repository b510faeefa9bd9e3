import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetQueueAttributesCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { inlineQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { upstreamConfigSchema } from '../../delivery/upstreamConfig.ts';
import { DeliveryLedger } from '../../functions/queue-delivery/deliveryLedger.ts';
import type { RunningSqsPoller } from '../../functions/sqs-poller/startSqsPoller.ts';
import { startTestWorkers } from './testWorkers.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';
import { RELAY_MAILBOX, startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { scannerEnvelope } from '../../testbed/helpers/scannerEnvelope.ts';

/**
 * Two `smarthost worker` instances on one queue, delivering through one mailbox whose budget is
 * BUDGET recipients a day: each instance alone would let BUDGET through, and their counts in the
 * ledger table (functions/queue-delivery/mailboxBudgetTable.ts) keep the two together to it. The
 * rest is deferred (back on the queue when the window frees room), not failed.
 */

const BUDGET = 3;
const MESSAGES = 10;

describe('two instances racing on one mailbox with a shared budget', () => {
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  const pollers: RunningSqsPoller[] = [];
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  const errors: string[] = [];
  /** Messages each instance handled (delivered or deferred). */
  const handledBy = [new Set<string>(), new Set<string>()];
  const loggerOf = (instance: number): DeliveryLogger => ({
    debug() {},
    info: (fields, message) => {
      if (message === 'delivered') handledBy[instance]?.add(String(fields.messageId));
    },
    warn: (fields, message) => {
      warnings.push({ fields, message });
      if (message === 'deferred: no mailbox it may use has room') handledBy[instance]?.add(String(fields.messageId));
    },
    error: (_fields, message) => void errors.push(message),
  });

  before(async () => {
    [rig, sqs, s3, dynamo] = await Promise.all([startExchangeOnlineRig(), startLocalSqs({ visibilityTimeout: 30, maxReceiveCount: 10 }), startLocalS3(), startLocalDynamo()]);
    const upstream = upstreamConfigSchema.parse(rig.upstream({ rateLimit: { perMinute: 1000, connections: 3, recipientsPerDay: BUDGET } }));
    pollers.push(...(await startTestWorkers(2, { sqs, s3, dynamo }, upstream, { visibilityTimeout: 30_000, lease: 30_000 }, loggerOf)));
  });

  after(async () => {
    await Promise.all(pollers.map((poller) => poller.stop()));
    await Promise.all([rig?.close(), sqs?.stop(), s3?.stop(), dynamo?.stop()]);
  });

  test(`${MESSAGES} messages of one recipient, a budget of ${BUDGET}: ${BUDGET} delivered in total, the rest deferred naming the budget, none failed`, async () => {
    const envelopes: MessageEnvelope[] = [];
    const entries = Array.from({ length: MESSAGES }, (_, i) => {
      const body = Buffer.from(`From: scanner@contoso.com\r\nSubject: budget ${i}\r\n\r\nshared budget\r\n`);
      const envelope = scannerEnvelope(`shared-budget-${process.pid}-${i}`, body);
      envelopes.push(envelope);
      return { Id: String(i), MessageBody: serializeQueueMessage(inlineQueueMessage(envelope, body)) };
    });
    const before = rig.exo.messages.length;
    await sqs.client.send(new SendMessageBatchCommand({ QueueUrl: sqs.queueUrl, Entries: entries }));

    // Every message handled: delivered (and deleted), or deferred.
    const deferrals = () => warnings.filter((w) => w.message === 'deferred: no mailbox it may use has room');
    await pollUntil(async () => rig.exo.messages.length - before + deferrals().length >= MESSAGES, 30_000, 'every message delivered or deferred');
    await Promise.all(pollers.map((poller) => poller.stop()));

    const delivered = rig.exo.messages.slice(before);
    assert.equal(delivered.length, BUDGET, `delivered ${delivered.length}, the budget is ${BUDGET}`);
    assert.ok(delivered.every((m) => m.auth.user === RELAY_MAILBOX));
    const deferred = deferrals();
    assert.equal(deferred.length, MESSAGES - BUDGET);
    for (const { fields } of deferred) {
      assert.match(String(fields.reason), new RegExp(`^${RELAY_MAILBOX.replace('.', '\\.')} reached its ${BUDGET} recipients per 24 hours until \\d{4}-`));
      // Back when the window frees room: SQS's longest visibility, 12 hours (the budget opens in ~25).
      assert.equal(fields.retryInSeconds, 12 * 3600);
    }
    const { Attributes } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: sqs.queueUrl, AttributeNames: ['ApproximateNumberOfMessagesNotVisible'] }));
    assert.equal(Attributes?.ApproximateNumberOfMessagesNotVisible, String(MESSAGES - BUDGET), 'the deferred ones wait on the queue');
    const dlq = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: sqs.dlqUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
    assert.equal(dlq.Attributes?.ApproximateNumberOfMessages, '0', 'nothing failed');
    assert.deepEqual(errors, []);
    // Both instances took part: each handled some of the messages (three at a time, its connections).
    assert.ok(handledBy.every((ids) => ids.size > 0), `handled per instance: ${handledBy.map((ids) => ids.size).join(', ')}`);
    // A deferral is no attempt: the deferred messages' ledger items count none and keep no event.
    const ledger = new DeliveryLedger(dynamo.client, dynamo.tableName);
    const deliveredIds = new Set(delivered.map((m) => envelopes.find((e) => e.sha256 === m.sha256)?.id));
    for (const envelope of envelopes.filter((e) => !deliveredIds.has(e.id))) {
      assert.deepEqual(await ledger.readHistory(envelope.id), []);
    }
  });
});
