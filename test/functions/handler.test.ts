import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { DLQ_ATTRIBUTES, FUNCTION_ENV } from '../../contract/cloudResources.ts';
import { parseQueueMessage } from '../../contract/queueMessage.ts';
import type { LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import type { LocalS3 } from '../../testbed/aws/localS3.ts';
import type { LocalSecretsManager } from '../../testbed/aws/localSecretsManager.ts';
import type { LocalSqs } from '../../testbed/aws/localSqs.ts';
import type { ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { startAwsTap, type AwsCall, type AwsTap } from './awsTap.ts';
import type { LambdaOutput } from './lambdaOutput.ts';
import { importLambda, type Handler, type LambdaUnderTest } from './lambdaUnderTest.ts';
import { lambdaContext, loadEvent, loadFixtureBytes, recordOf, sqsRecord } from './sqsEvents.ts';
import { startCloudRig, type CloudRig } from '../../testbed/helpers/cloudRig.ts';

/**
 * The Lambda entry point (functions/lambda/handler.ts) invoked directly with the SQS events of
 * test/fixtures/events, as the Lambda runtime would: its AWS clients come from the SDK's default
 * chain (pointed at the stand-ins by environment variables), its upstream from the Secrets Manager
 * stand-in, and it delivers to the fake Exchange Online. The SQS and DynamoDB stand-ins are
 * reached through taps that record each call.
 */

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const SERVER_BUSY = '451 4.7.500 Server busy';
const RECIPIENT_NOT_FOUND = '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup';

/** The body bytes a record's queue message carries (inline ones only). */
function inlineBodyOf(body: string): Buffer {
  const message = parseQueueMessage(body);
  assert.equal(message.body.kind, 'inline');
  const raw = Buffer.from(message.body.kind === 'inline' ? message.body.data : '', 'base64');
  return message.body.kind === 'inline' && message.body.encoding === 'gzip+base64' ? gunzipSync(raw) : raw;
}

interface DeadLetterView {
  body: string | undefined;
  reason: string | undefined;
  kind: string | undefined;
  reply: string | undefined;
}

describe('delivery Lambda handler with fixture SQS events', () => {
  let cloud: CloudRig | undefined;
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  let secrets: LocalSecretsManager;
  let sqsTap: AwsTap;
  let dynamoTap: AwsTap;
  let output: LambdaOutput;
  let handler: Handler;
  let secretArn: string;
  let queueUrl: string;
  let dlqUrl: string;
  /** While set: a DynamoDB call for which it returns a promise waits for that promise. */
  let holdLedger: ((call: AwsCall) => Promise<unknown> | undefined) | undefined;
  let lambda: LambdaUnderTest | undefined;
  // One receive time for every fixture this run loads, so a record loaded twice is the same record.
  const receivedAt = new Date().toISOString();

  before(async () => {
    cloud = await startCloudRig();
    ({ rig, sqs, s3, dynamo, secrets, secretArn } = cloud);
    [sqsTap, dynamoTap] = await Promise.all([startAwsTap(sqs.endpoint), startAwsTap(dynamo.endpoint, { hold: (call) => holdLedger?.(call) })]);
    // The SQS client sends each call to its QueueUrl's host: the function's queue URLs name the tap.
    queueUrl = `${sqsTap.endpoint}${new URL(sqs.queueUrl).pathname}`;
    dlqUrl = `${sqsTap.endpoint}${new URL(sqs.dlqUrl).pathname}`;
    lambda = await importLambda(
      { sqs: sqsTap.endpoint, s3: s3.endpoint, dynamodb: dynamoTap.endpoint, secretsManager: secrets.endpoint },
      {
        [FUNCTION_ENV.queueUrl]: queueUrl,
        [FUNCTION_ENV.secretArn]: secretArn,
        [FUNCTION_ENV.deadLetterQueueUrl]: dlqUrl,
        [FUNCTION_ENV.ledgerTable]: dynamo.tableName,
        // Read the secret on every use, so the test can break and mend it between invocations.
        [FUNCTION_ENV.secretTtlSeconds]: '0',
        [FUNCTION_ENV.instances]: '1',
      },
    );
    ({ handler, output } = lambda);
  });

  after(async () => {
    lambda?.restore();
    await Promise.all([cloud?.stop(), sqsTap?.stop(), dynamoTap?.stop()]);
  });

  /** Everything in the dead-letter queue, removed from it. */
  async function drainDeadLetters(): Promise<Message[]> {
    const drained: Message[] = [];
    for (;;) {
      const { Messages } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.dlqUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }));
      if (!Messages?.length) return drained;
      for (const message of Messages) {
        drained.push(message);
        await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.dlqUrl, ReceiptHandle: message.ReceiptHandle }));
      }
    }
  }

  function view(message: Message): DeadLetterView {
    const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue;
    return { body: message.Body, reason: attribute(DLQ_ATTRIBUTES.reason), kind: attribute(DLQ_ATTRIBUTES.kind), reply: attribute(DLQ_ATTRIBUTES.reply) };
  }

  test('a mixed batch: delivered, dead-lettered as malformed, and a 451 reported as the only batch item failure', async () => {
    const event = loadEvent('batch-mixed.json', { receivedAt });
    const [good, malformed, busy] = [recordOf(event, 0), recordOf(event, 1), recordOf(event, 2)];
    const goodBody = inlineBodyOf(good.body);
    const goodId = parseQueueMessage(good.body).envelope.id;

    // The busy message is on the queue for real (received with visibility 0, so it is visible
    // again at once): its visibility change reaches a message the stand-in knows.
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: busy.body }));
    const received = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, VisibilityTimeout: 0, WaitTimeSeconds: 0 }));
    const receiptHandle = received.Messages?.[0]?.ReceiptHandle;
    assert.ok(receiptHandle);
    event.Records[2] = { ...busy, receiptHandle };

    // The processor runs the records in parallel and the scripted 451 goes to whichever MAIL FROM
    // comes first. The good message's ledger claim waits until the 451 has gone out, so it is the
    // busy message that gets it, every time.
    const errorsBefore = rig.exo.errorReplies.length;
    const serverBusySent = rig.exo.waitFor(() => rig.exo.errorReplies.length > errorsBefore, 15_000, 'the 451').catch(() => undefined);
    holdLedger = (call) => (JSON.stringify(call.input).includes(goodId) ? serverBusySent : undefined);
    rig.exo.failNext('mail', SERVER_BUSY);
    const messagesBefore = rig.exo.messages.length;
    const callsBefore = sqsTap.calls.length;
    const outputBefore = output.records.length;

    let result: SQSBatchResponse;
    try {
      result = await handler(event, lambdaContext());
    } finally {
      holdLedger = undefined;
    }

    assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: busy.messageId }] });
    // nodemailer pipelines RCPT TO and DATA behind MAIL FROM; the server answers those with 503.
    assert.deepEqual(
      rig.exo.errorReplies.slice(errorsBefore).filter((line) => !line.startsWith('503 ')),
      [SERVER_BUSY],
    );

    const delivered = rig.exo.messages.slice(messagesBefore);
    assert.deepEqual(
      delivered.map((m) => ({ mailFrom: m.mailFrom, rcptTo: m.rcptTo, sha256: m.sha256 })),
      [{ mailFrom: 'scanner@contoso.com', rcptTo: ['you@contoso.com'], sha256: sha256(goodBody) }],
    );

    const deadLetters = (await drainDeadLetters()).map(view);
    let jsonError = '';
    try {
      JSON.parse(malformed.body);
    } catch (error) {
      jsonError = (error as Error).message;
    }
    assert.deepEqual(deadLetters, [
      { body: malformed.body, reason: `not a smarthost queue message: queue message is not JSON: ${jsonError}`, kind: 'malformed', reply: undefined },
    ]);

    // The retry delay is the first step of the schedule: 60 s.
    const sqsCalls = sqsTap.calls.slice(callsBefore);
    assert.deepEqual(
      sqsCalls.filter((c) => c.operation === 'ChangeMessageVisibility').map((c) => c.input),
      [{ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: 60 }],
    );
    assert.deepEqual(sqsCalls.map((c) => c.operation).sort(), ['ChangeMessageVisibility', 'SendMessage']);
    // ... and the stand-in hides the message now (it was visible before: received with visibility 0).
    const again = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.queueUrl, WaitTimeSeconds: 0 }));
    assert.equal(again.Messages, undefined);
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: receiptHandle }));

    // Each record's log lines name its own SQS message, though the records ran side by side.
    const logged = output
      .logs(outputBefore)
      .filter((line) => typeof line.messageId === 'string')
      .map((line) => `${String(line.messageId)} ${String(line.sqsMessageId)}`);
    assert.deepEqual([...new Set(logged)].sort(), [`fnGoodInline0001 ${good.messageId}`, `fnServerBusy0001 ${busy.messageId}`]);

    // EMF: one line for the invocation's metrics, one for the failure by class.
    const emf = output.metrics(outputBefore);
    const invocation = emf.find((line) => 'Delivered' in line);
    assert.ok(invocation, `no EMF line with Delivered among ${JSON.stringify(emf)}`);
    assert.equal(invocation.Delivered, 1);
    assert.equal(invocation.BytesDelivered, goodBody.length);
    assert.equal(invocation.DeliveryRetried, 1);
    assert.equal(invocation.Throttled, 1);
    assert.equal(invocation.DeliveryFailed, 1);
    assert.deepEqual(
      emf.filter((line) => 'FailureClass' in line).map((line) => ({ FailureClass: line.FailureClass, DeliveryFailed: line.DeliveryFailed })),
      [{ FailureClass: 'malformed', DeliveryFailed: 1 }],
    );
    const namespaces = emf.map((line) => (line._aws as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0]?.Namespace);
    assert.deepEqual([...new Set(namespaces)], ['Smarthost']);
  });

  test('the good record delivered again is not sent twice', async () => {
    const event = loadEvent('batch-redelivery.json', { receivedAt });
    const record = recordOf(event, 0);
    assert.equal(record.attributes.ApproximateReceiveCount, '2');
    const goodBody = inlineBodyOf(record.body);
    const messagesBefore = rig.exo.messages.length;
    const outputBefore = output.records.length;

    const result = await handler(event, lambdaContext());

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(rig.exo.messages.length, messagesBefore);
    assert.equal(rig.exo.messages.filter((m) => m.sha256 === sha256(goodBody)).length, 1);
    const skipped = output.logs(outputBefore).filter((line) => line.message === 'already delivered, not sent again');
    assert.deepEqual(
      skipped.map((line) => ({ messageId: line.messageId, receiveCount: line.receiveCount, sqsMessageId: line.sqsMessageId })),
      [{ messageId: 'fnGoodInline0001', receiveCount: 2, sqsMessageId: record.messageId }],
    );
    assert.deepEqual(await drainDeadLetters(), []);
  });

  test('a body in S3 is delivered and its object deleted', async () => {
    const event = loadEvent('s3-pointer.json', { receivedAt });
    const message = parseQueueMessage(recordOf(event, 0).body);
    assert.equal(message.body.kind, 's3');
    const pointer = message.body as Extract<typeof message.body, { kind: 's3' }>;
    const bytes = loadFixtureBytes('s3-pointer.eml');
    assert.equal(sha256(bytes), pointer.sha256);
    await s3.client.send(new PutObjectCommand({ Bucket: pointer.bucket, Key: pointer.key, Body: bytes, ContentType: 'message/rfc822' }));
    const messagesBefore = rig.exo.messages.length;

    const result = await handler(event, lambdaContext());

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.deepEqual(
      rig.exo.messages.slice(messagesBefore).map((m) => ({ rcptTo: m.rcptTo, sha256: m.sha256, size: m.raw.length - (m.relayTrace?.length ?? 0), traced: m.relayTrace?.includes(`by smarthost id ${message.envelope.id};`) })),
      [{ rcptTo: ['you@contoso.com'], sha256: pointer.sha256, size: pointer.size, traced: true }],
    );
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: pointer.bucket }));
    assert.equal(listed.KeyCount, 0);
  });

  test('550 5.1.10 for one of two recipients: the other gets it, the message waits in the DLQ, a redrive sends only to the refused one', async () => {
    const event = loadEvent('partial-recipients.json', { receivedAt });
    const record = recordOf(event, 0);
    const body = inlineBodyOf(record.body);
    assert.deepEqual(parseQueueMessage(record.body).envelope.rcptTo, ['ops@contoso.com', 'you@contoso.com']);
    // RCPT TO goes out in envelope order: the first, ops@, is refused.
    rig.exo.failNext('rcpt', RECIPIENT_NOT_FOUND);
    const messagesBefore = rig.exo.messages.length;

    const result = await handler(event, lambdaContext());

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.deepEqual(
      rig.exo.messages.slice(messagesBefore).map((m) => ({ rcptTo: m.rcptTo, sha256: m.sha256 })),
      [{ rcptTo: ['you@contoso.com'], sha256: sha256(body) }],
    );
    const [deadLetter, ...others] = await drainDeadLetters();
    assert.deepEqual(others, []);
    assert.ok(deadLetter);
    assert.deepEqual(view(deadLetter), { body: record.body, reason: 'recipients refused: ops@contoso.com', kind: 'permanent', reply: RECIPIENT_NOT_FOUND });

    // The operator fixed the address and redrove the message: SQS hands the DLQ body to the function again.
    const redriven = sqsRecord(deadLetter.Body ?? '');
    const redrive = await handler({ Records: [redriven] }, lambdaContext());

    assert.deepEqual(redrive, { batchItemFailures: [] });
    assert.deepEqual(
      rig.exo.messages.slice(messagesBefore).map((m) => ({ rcptTo: m.rcptTo, sha256: m.sha256 })),
      [
        { rcptTo: ['you@contoso.com'], sha256: sha256(body) },
        { rcptTo: ['ops@contoso.com'], sha256: sha256(body) },
      ],
    );
    assert.deepEqual(await drainDeadLetters(), []);

    // Now finished: one more redelivery sends nothing.
    await handler({ Records: [sqsRecord(record.body, { receiveCount: 3 })] }, lambdaContext());
    assert.equal(rig.exo.messages.length, messagesBefore + 2);
  });

  test('a secret that is not JSON: the message is held for the operator (retried in 4 h, not dead-lettered), and delivered once the secret is mended', async () => {
    const event = loadEvent('upstream-secret-broken.json', { receivedAt });
    const record = recordOf(event, 0);
    const body = inlineBodyOf(record.body);
    const messagesBefore = rig.exo.messages.length;
    const callsBefore = sqsTap.calls.length;
    secrets.setSecret(secretArn, '{ "host": "smtp.office365.com", port: 587 ');

    let result: SQSBatchResponse;
    try {
      result = await handler(event, lambdaContext());
    } finally {
      secrets.setSecret(secretArn, JSON.stringify(rig.upstream()));
    }

    assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: record.messageId }] });
    assert.equal(rig.exo.messages.length, messagesBefore);
    assert.deepEqual(await drainDeadLetters(), []);
    assert.deepEqual(
      sqsTap.calls.slice(callsBefore).filter((c) => c.operation === 'ChangeMessageVisibility').map((c) => c.input),
      [{ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: 4 * 3600 }],
    );
    const problem = `the upstream secret ${secretArn} is not valid: the secret is not JSON`;
    const held = output.logs().find((line) => line.message === 'delivery needs the operator');
    assert.deepEqual([held?.reply, held?.operatorAction], [problem, `put a valid upstream JSON (the fields of the agent's upstream block) in secret ${secretArn}`]);

    // The secret is read again on the next use (TTL 0 here): the next receive sends it, as attempt 2.
    const retried = await handler({ Records: [sqsRecord(record.body, { receiptHandle: record.receiptHandle, receiveCount: 2 })] }, lambdaContext());
    assert.deepEqual(retried, { batchItemFailures: [] });
    assert.deepEqual(
      rig.exo.messages.slice(messagesBefore).map((m) => ({ rcptTo: m.rcptTo, sha256: m.sha256 })),
      [{ rcptTo: ['you@contoso.com'], sha256: sha256(body) }],
    );
    const delivered = output.logs().find((line) => line.message === 'delivered' && line.messageId === parseQueueMessage(record.body).envelope.id);
    assert.equal(delivered?.attempts, 2);
  });
});
