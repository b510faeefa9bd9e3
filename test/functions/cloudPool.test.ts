import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DELIVERY_METRICS, FUNCTION_ENV } from '../../contract/cloudResources.ts';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { inlineQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';
import { DeliveryLedger } from '../../functions/queue-delivery/deliveryLedger.ts';
import type { LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import type { LocalS3 } from '../../testbed/aws/localS3.ts';
import type { LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';
import type { LocalSqs } from '../../testbed/aws/localSqs.ts';
import { RELAY_MAILBOX, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import type { LambdaOutput } from './lambdaOutput.ts';
import { importLambda, type Handler, type LambdaUnderTest } from './lambdaUnderTest.ts';
import { startCloudRig, type CloudRig } from '../../testbed/helpers/cloudRig.ts';
import { lambdaContext, sqsRecord } from './sqsEvents.ts';

/**
 * The Lambda handler delivering through a pool of mailboxes from its secret (`upstream.mailboxes`),
 * chosen by sendAs as on the office box, against the fake Exchange Online: a mailbox holds a SendAs
 * grant only for its own devices' addresses, so a message through the wrong one would be refused.
 */

const RELAY2 = 'relay2@contoso.com';
const FAX = 'faxservice@contoso.com';
const SCANNER = 'scanner@contoso.com';
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** relay@ may send as the fax only, relay2@ as the scanner only. */
function poolSecret(rig: ExchangeOnlineRig): UpstreamConfigInput {
  const { auth, ...block } = rig.upstream();
  const { user: _user, ...app } = auth as { user: string };
  return {
    ...block,
    auth: app as UpstreamConfigInput['auth'],
    mailboxes: [
      { mailbox: RELAY_MAILBOX, sendAs: [FAX] },
      // Its budget: the first two tests send it one recipient each, the third two more.
      { mailbox: RELAY2, sendAs: [SCANNER], rateLimit: { recipientsPerDay: 3 } },
    ],
  };
}

let sequence = 0;
function queued(from: string, rcptTo = ['you@contoso.com']): { envelope: MessageEnvelope; body: string; raw: Buffer } {
  const raw = Buffer.from(`From: ${from}\r\nSubject: pool ${sequence}\r\n\r\nthrough the pool\r\n`);
  const envelope: MessageEnvelope = {
    id: `cloudpool${process.pid}x${sequence++}`,
    receivedAt: new Date().toISOString(),
    client: { name: 'device', ip: '192.0.2.20' },
    helo: 'device',
    mailFrom: from,
    rcptTo,
    size: raw.length,
    sha256: sha256(raw),
  };
  return { envelope, raw, body: serializeQueueMessage(inlineQueueMessage(envelope, raw)) };
}

describe('the delivery Lambda with a pool of mailboxes in its secret', () => {
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  let secrets: LocalSecretsManager;
  let output: LambdaOutput;
  let handler: Handler;
  let secretArn: string;
  let lambda: LambdaUnderTest | undefined;
  let cloud: CloudRig | undefined;

  before(async () => {
    cloud = await startCloudRig({
      exchange: {
        mailboxes: [RELAY_MAILBOX, RELAY2, 'you@contoso.com', 'ops@contoso.com', FAX],
        sendAs: { [RELAY_MAILBOX]: [FAX], [RELAY2]: [SCANNER] },
      },
      secret: poolSecret,
    });
    ({ rig, sqs, s3, dynamo, secrets, secretArn } = cloud);
    lambda = await importLambda(
      { sqs: sqs.endpoint, s3: s3.endpoint, dynamodb: dynamo.endpoint, secretsManager: secrets.endpoint },
      {
        [FUNCTION_ENV.queueUrl]: sqs.queueUrl,
        [FUNCTION_ENV.secretArn]: secretArn,
        [FUNCTION_ENV.deadLetterQueueUrl]: sqs.dlqUrl,
        [FUNCTION_ENV.ledgerTable]: dynamo.tableName,
        [FUNCTION_ENV.secretTtlSeconds]: '0',
        [FUNCTION_ENV.instances]: '2',
      },
    );
    ({ handler, output } = lambda);
  });

  after(async () => {
    lambda?.restore();
    await cloud?.stop();
  });

  test('a message sent as B goes out only through mailbox B, one sent as A only through A, and the ledger names the mailbox', async () => {
    const scan = queued(SCANNER);
    const fax = queued(FAX);
    const before = rig.exo.messages.length;
    const result = await handler({ Records: [sqsRecord(scan.body), sqsRecord(fax.body)] }, lambdaContext());
    assert.deepEqual(result, { batchItemFailures: [] });
    const delivered = rig.exo.messages.slice(before).map((m) => ({ sha256: m.sha256, user: m.auth.user, mailFrom: m.mailFrom, rcptTo: m.rcptTo }));
    assert.deepEqual(
      delivered.sort((a, b) => a.user.localeCompare(b.user)),
      [
        { sha256: fax.envelope.sha256, user: RELAY_MAILBOX, mailFrom: FAX, rcptTo: ['you@contoso.com'] },
        { sha256: scan.envelope.sha256, user: RELAY2, mailFrom: SCANNER, rcptTo: ['you@contoso.com'] },
      ],
    );
    const ledger = new DeliveryLedger(dynamo.client, dynamo.tableName);
    const attempts = async (id: string) => (await ledger.readHistory(id)).flatMap((e) => (e.type === 'attempt' ? [{ mailbox: e.mailbox, route: e.route, accepted: e.accepted }] : []));
    assert.deepEqual(await attempts(scan.envelope.id), [{ mailbox: RELAY2, route: `smtp 127.0.0.1:${rig.exo.port}`, accepted: ['you@contoso.com'] }]);
    assert.deepEqual(await attempts(fax.envelope.id), [{ mailbox: RELAY_MAILBOX, route: `smtp 127.0.0.1:${rig.exo.port}`, accepted: ['you@contoso.com'] }]);
  });

  test('scanner mail keeps going through B while A is throttled: only A’s message comes back', async () => {
    const scan = queued(SCANNER);
    const fax = queued(FAX);
    // The fax record is on the queue for real, so its visibility change reaches a message the stand-in knows.
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: fax.body }));
    const received = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, WaitTimeSeconds: 0 }));
    const receiptHandle = received.Messages?.[0]?.ReceiptHandle;
    assert.ok(receiptHandle);
    const faxRecord = sqsRecord(fax.body, { receiptHandle });
    rig.exo.failNextFor(RELAY_MAILBOX, 'mail', '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded');
    const before = rig.exo.messages.length;
    const result = await handler({ Records: [sqsRecord(scan.body), faxRecord] }, lambdaContext());
    assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: faxRecord.messageId }] });
    assert.deepEqual(
      rig.exo.messages.slice(before).map((m) => [m.sha256, m.auth.user]),
      [[scan.envelope.sha256, RELAY2]],
    );
  });

  test('over its budget, mailbox B defers the message with a reason naming the budget: not sent, not failed, no attempt counted', async () => {
    const scan = queued(SCANNER, ['you@contoso.com', 'ops@contoso.com']);
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: scan.body }));
    const received = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
    const receiptHandle = received.Messages?.[0]?.ReceiptHandle;
    assert.ok(receiptHandle);
    const record = sqsRecord(scan.body, { receiptHandle });
    const before = rig.exo.messages.length;
    const logsBefore = output.records.length;
    const result = await handler({ Records: [record] }, lambdaContext());
    assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: record.messageId }] });
    assert.equal(rig.exo.messages.length, before, 'nothing sent');
    const deferred = output.logs(logsBefore).filter((line) => line.message === 'deferred: no mailbox it may use has room');
    assert.equal(deferred.length, 1);
    assert.equal(deferred[0]?.messageId, scan.envelope.id);
    assert.match(String(deferred[0]?.reason), /^relay2@contoso\.com reached its 3 recipients per 24 hours until \d{4}-\d\d-\d\dT/);
    // Hidden until the window frees room (at most SQS's 12 hours), never in the dead-letter queue.
    assert.equal(deferred[0]?.retryInSeconds, 12 * 3600);
    const again = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, WaitTimeSeconds: 0 }));
    assert.equal(again.Messages, undefined);
    const dead = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.dlqUrl, WaitTimeSeconds: 0 }));
    assert.equal(dead.Messages, undefined);
    assert.deepEqual(await new DeliveryLedger(dynamo.client, dynamo.tableName).readHistory(scan.envelope.id), []);
    // Counted where the operator's dashboards can see it, apart from failures and retries.
    const emf = output.metrics(logsBefore);
    assert.equal(emf.reduce((sum, line) => sum + Number(line[DELIVERY_METRICS.deferred] ?? 0), 0), 1, JSON.stringify(emf));
    assert.equal(emf.some((line) => DELIVERY_METRICS.failed in line || DELIVERY_METRICS.retried in line), false);
  });
});
