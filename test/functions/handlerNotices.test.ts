import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FUNCTION_ENV } from '../../contract/cloudResources.ts';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { inlineQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import { DeliveryLedger } from '../../functions/queue-delivery/deliveryLedger.ts';
import type { LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import type { LocalS3 } from '../../testbed/aws/localS3.ts';
import type { LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';
import type { LocalSqs } from '../../testbed/aws/localSqs.ts';
import { RELAY_MAILBOX, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { assertFailureReport } from '../notices/reportAssertions.ts';
import type { LambdaOutput } from './lambdaOutput.ts';
import { FUNCTION_NAME, importLambda, type Handler, type LambdaUnderTest } from './lambdaUnderTest.ts';
import { lambdaContext, sqsRecord } from './sqsEvents.ts';
import { startCloudRig, type CloudRig } from '../../testbed/helpers/cloudRig.ts';
import { scannerEnvelope } from '../../testbed/helpers/scannerEnvelope.ts';

/**
 * The delivery Lambda's failure notices (functions/lambda/handler.ts, imported with the stack's
 * failureNoticeTo set): a dead-lettered message's RFC 3464 report goes to the addresses the agent
 * named in the envelope and to failureNoticeTo, one each, and a redelivered record sends none again.
 */

const ADMIN = 'ops@contoso.com';
const SENDER = 'scanner@contoso.com';
/** Internal to the fake tenant and in no mailbox: 550 5.1.10 on every attempt. */
const NOBODY = 'nobody@contoso.com';
const BODY_MARKER = 'PAYROLL-SCAN-CONFIDENTIAL-4711';

function queueMessage(id: string, extra: Partial<MessageEnvelope> = {}): string {
  const body = Buffer.from(`From: ${SENDER}\r\nTo: ${NOBODY}\r\nSubject: Scan 4711\r\n\r\n${BODY_MARKER}\r\n`);
  const envelope = scannerEnvelope(id, body, { helo: 'scanner.contoso.com', mailFrom: SENDER, rcptTo: [NOBODY], ...extra });
  return serializeQueueMessage(inlineQueueMessage(envelope, body));
}

describe('delivery Lambda: failure notices to the sender and the admin', () => {
  let cloud: CloudRig | undefined;
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  let secrets: LocalSecretsManager;
  let output: LambdaOutput;
  let handler: Handler;
  let ledger: DeliveryLedger;
  let lambda: LambdaUnderTest | undefined;

  before(async () => {
    cloud = await startCloudRig();
    ({ rig, sqs, s3, dynamo, secrets } = cloud);
    lambda = await importLambda(
      { sqs: sqs.endpoint, s3: s3.endpoint, dynamodb: dynamo.endpoint, secretsManager: secrets.endpoint },
      {
        [FUNCTION_ENV.queueUrl]: sqs.queueUrl,
        [FUNCTION_ENV.secretArn]: cloud.secretArn,
        [FUNCTION_ENV.deadLetterQueueUrl]: sqs.dlqUrl,
        [FUNCTION_ENV.ledgerTable]: dynamo.tableName,
        [FUNCTION_ENV.failureNoticeTo]: ADMIN,
        [FUNCTION_ENV.instances]: '1',
      },
    );
    ({ handler, output } = lambda);
    ledger = new DeliveryLedger(dynamo.client, dynamo.tableName);
  });

  after(async () => {
    lambda?.restore();
    await cloud?.stop();
  });

  const noticesSince = (count: number) => rig.exo.messages.slice(count).filter((m) => m.mailFrom === '');
  const expected = { from: RELAY_MAILBOX, finalRecipient: NOBODY, status: '5.1.10', bodyMarker: BODY_MARKER };

  test('one report each to the sender and the admin (named twice, in two spellings), none again when the record comes back', async () => {
    // The agent named the sender and its own admin; the stack's failureNoticeTo is that admin too.
    const body = queueMessage('lambdaNotice0001', { noticeTo: [SENDER, 'OPS@Contoso.com'] });
    const before = rig.exo.messages.length;

    const result = await handler({ Records: [sqsRecord(body)] }, lambdaContext());

    assert.deepEqual(result, { batchItemFailures: [] });
    const notices = noticesSince(before);
    // Sent as the agent spelt it (the fake's SMTP server lowercases the domain).
    assert.deepEqual(notices.map((n) => n.rcptTo.join()).sort(), ['OPS@contoso.com', SENDER]);
    for (const notice of notices) await assertFailureReport(notice, { ...expected, to: notice.rcptTo[0] ?? '' });
    // The function names itself as the reporting MTA, by the name its runtime gives it.
    for (const notice of notices) assert.match(notice.raw.toString('utf8'), new RegExp(`^Reporting-MTA: dns; ${FUNCTION_NAME}\r$`, 'm'));
    const sentEvents = (await ledger.readHistory('lambdaNotice0001')).filter((e) => e.type === 'notice');
    assert.deepEqual(sentEvents.map((e) => e.type === 'notice' && `${e.to} ${e.sent}`).sort(), ['OPS@Contoso.com true', `${SENDER} true`]);

    // The same record again, as SQS redelivers one whose deletion a crash prevented: it is tried
    // and dead-lettered again, and nobody gets a second notice.
    const outputBefore = output.records.length;
    const again = await handler({ Records: [sqsRecord(body, { receiveCount: 2 })] }, lambdaContext());
    assert.deepEqual(again, { batchItemFailures: [] });
    assert.equal(noticesSince(before).length, 2);
    assert.equal(rig.exo.errorReplies.filter((r) => r.startsWith('550 5.1.10')).length >= 2, true, 'the redelivery was attempted');
    const skipped = output.logs(outputBefore).filter((line) => line.message === 'failure notice sent before, not again');
    assert.deepEqual(skipped.map((line) => line.to).sort(), ['OPS@Contoso.com', SENDER]);
  });

  test('a queue message of an older agent (no noticeTo) still gets the admin its report, and the sender none', async () => {
    const body = queueMessage('lambdaNotice0002');
    assert.doesNotMatch(body, /noticeTo/);
    const before = rig.exo.messages.length;

    const result = await handler({ Records: [sqsRecord(body)] }, lambdaContext());

    assert.deepEqual(result, { batchItemFailures: [] });
    const notices = noticesSince(before);
    assert.equal(notices.length, 1);
    await assertFailureReport(notices[0]!, { ...expected, to: ADMIN });
  });

  test('a message held for the operator past SMARTHOST_DELAYED_NOTICE_AFTER (default 4h) gets one "Delayed" report each, a younger one none', async () => {
    const HELD = '550 5.7.60 SMTP; Client does not have permissions to send as this sender';
    /** Puts the message on the queue for real, so the handler's visibility change reaches it. */
    const receivedRecord = async (body: string) => {
      await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: body }));
      const received = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, VisibilityTimeout: 0, WaitTimeSeconds: 0 }));
      const receiptHandle = received.Messages?.[0]?.ReceiptHandle;
      assert.ok(receiptHandle);
      return sqsRecord(body, { receiptHandle });
    };
    const young = queueMessage('lambdaNotice0005', { noticeTo: [SENDER] });
    const old = queueMessage('lambdaNotice0004', { noticeTo: [SENDER], receivedAt: new Date(Date.now() - 5 * 3_600_000).toISOString() });
    const before = rig.exo.messages.length;

    rig.exo.failNext('mail', HELD);
    const youngResult = await handler({ Records: [await receivedRecord(young)] }, lambdaContext());
    assert.equal(youngResult.batchItemFailures.length, 1, 'held: it comes back later');
    assert.deepEqual(noticesSince(before), [], 'an hour-old held message: no notice yet');

    rig.exo.failNext('mail', HELD);
    const oldResult = await handler({ Records: [await receivedRecord(old)] }, lambdaContext());
    assert.equal(oldResult.batchItemFailures.length, 1);
    const notices = noticesSince(before);
    assert.deepEqual(notices.map((n) => n.rcptTo.join()).sort(), [ADMIN, SENDER]);
    for (const notice of notices) {
      const parsed = await assertFailureReport(notice, { ...expected, to: notice.rcptTo[0] ?? '', status: '4.7.60', action: 'delayed' });
      assert.equal(parsed.subject, 'Delayed: Scan 4711');
    }
    const recorded = (await ledger.readHistory('lambdaNotice0004')).filter((e) => e.type === 'notice');
    assert.deepEqual(recorded.map((e) => e.type === 'notice' && `${e.kind} ${e.to} ${e.sent}`).sort(), [`delayed ${ADMIN} true`, `delayed ${SENDER} true`]);

    // Held again at its next receive: nobody gets a second one.
    rig.exo.failNext('mail', HELD);
    await handler({ Records: [await receivedRecord(old)] }, lambdaContext());
    assert.equal(noticesSince(before).length, 2);
  });

  test('a message from <> gets no report at all, whatever the envelope names', async () => {
    const body = queueMessage('lambdaNotice0003', { mailFrom: '', noticeTo: [SENDER] });
    const before = rig.exo.messages.length;
    const outputBefore = output.records.length;

    assert.deepEqual(await handler({ Records: [sqsRecord(body)] }, lambdaContext()), { batchItemFailures: [] });

    assert.deepEqual(noticesSince(before), []);
    assert.ok(output.logs(outputBefore).some((line) => line.message === 'no failure notice' && /the sender is <>/.test(String(line.reason))));
  });
});
