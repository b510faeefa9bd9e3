import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { DLQ_ATTRIBUTES } from '../../contract/cloudResources.ts';
import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import { encodeInlineBody, QUEUE_MESSAGE_SCHEMA_VERSION, s3QueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import type { PoolSource } from '../../delivery/pool/poolSource.ts';
import { upstreamConfigSchema } from '../../delivery/upstreamConfig.ts';
import { createDeliveryDeps } from '../../functions/queue-delivery/createDeliveryDeps.ts';
import { noMetrics } from '../../functions/queue-delivery/deliveryMetrics.ts';
import { handleQueueRecord, type QueueRecordDeps } from '../../functions/queue-delivery/handleQueueRecord.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { scannerEnvelope, sha256Hex as sha256 } from '../../testbed/helpers/scannerEnvelope.ts';

/**
 * The queue message promises the body's size and SHA-256; the function checks both while the
 * body streams to the upstream, and a body that breaks the promise is dead-lettered with the
 * reason, never delivered (the fake Exchange Online captures nothing).
 */

// Larger than one S3 read chunk, so a change in the middle is caught after bytes already went out.
const BODY = Buffer.concat([
  Buffer.from('From: scanner@contoso.com\r\nTo: you@contoso.com\r\nSubject: scan\r\n\r\n'),
  Buffer.from(`${'x'.repeat(998)}\r\n`.repeat(300)),
]);

let counter = 0;
function envelopeFor(body: Buffer): MessageEnvelope {
  counter += 1;
  return scannerEnvelope(`integrity-${process.pid}-${counter}`, body);
}

describe('the function checks the body the queue message promises', () => {
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  let deps: QueueRecordDeps & { pools: PoolSource };
  const errors: { fields: Record<string, unknown>; message: string }[] = [];
  const logger: DeliveryLogger = { debug() {}, info() {}, warn() {}, error: (fields, message) => void errors.push({ fields, message }) };

  before(async () => {
    [rig, sqs, s3, dynamo] = await Promise.all([startExchangeOnlineRig(), startLocalSqs({ maxReceiveCount: 10 }), startLocalS3(), startLocalDynamo()]);
    deps = createDeliveryDeps({
      queueUrl: sqs.queueUrl,
      deadLetterQueueUrl: sqs.dlqUrl,
      ledgerTable: dynamo.tableName,
      upstream: upstreamConfigSchema.parse(rig.upstream()),
      metrics: noMetrics,
      logger,
      leaseMs: 60_000,
      aws: { sqs: sqs.client, s3: s3.client, dynamo: dynamo.client },
    });
  });

  after(async () => {
    await deps?.pools.close();
    await Promise.all([rig?.close(), sqs?.stop(), s3?.stop(), dynamo?.stop()]);
  });

  async function deadLetters(): Promise<Message[]> {
    const { Messages } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: sqs.dlqUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }));
    for (const message of Messages ?? []) await sqs.client.send(new DeleteMessageCommand({ QueueUrl: sqs.dlqUrl, ReceiptHandle: message.ReceiptHandle }));
    return Messages ?? [];
  }

  /** Stores `stored` in S3 under a message that promises `promised`; handles its record. */
  async function deliverThroughS3(promised: Buffer, stored: Buffer) {
    const envelope = envelopeFor(promised);
    const key = `incoming/${envelope.id}.eml`;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: stored }));
    const body = serializeQueueMessage(s3QueueMessage(envelope, { bucket: s3.bucket, key }));
    const result = await handleQueueRecord({ messageId: `sqs-${envelope.id}`, body, receiptHandle: 'unused', receiveCount: 1 }, deps);
    return { envelope, body, result };
  }

  const corruptions: { name: string; stored: (body: Buffer) => Buffer; reason: RegExp }[] = [
    {
      name: 'bytes changed',
      stored: (body) => {
        const changed = Buffer.from(body);
        changed[Math.floor(changed.length / 2)] = 'y'.charCodeAt(0);
        return changed;
      },
      reason: /the message body failed its check: body of message \S+ has SHA-256 [0-9a-f]{64}, the queue message says [0-9a-f]{64}/,
    },
    {
      name: 'truncated',
      stored: (body) => body.subarray(0, body.length - 100),
      reason: new RegExp(`the message body failed its check: body of message \\S+ has ${BODY.length - 100} bytes, the queue message says ${BODY.length}`),
    },
    {
      name: 'longer',
      stored: (body) => Buffer.concat([body, Buffer.from('trailing garbage\r\n')]),
      reason: new RegExp(`the message body failed its check: body of message \\S+ runs past the ${BODY.length} bytes the queue message says`),
    },
  ];

  for (const corruption of corruptions) {
    test(`an S3 body (${corruption.name}) is dead-lettered with the reason and nothing reaches the upstream`, async () => {
      const delivered = rig.exo.messages.length;
      const { body, result } = await deliverThroughS3(BODY, corruption.stored(BODY));
      assert.equal(result, 'dead-lettered');
      const [letter, ...more] = await deadLetters();
      assert.equal(more.length, 0);
      assert.equal(letter?.Body, body);
      assert.match(letter?.MessageAttributes?.[DLQ_ATTRIBUTES.reason]?.StringValue ?? '', corruption.reason);
      assert.equal(letter?.MessageAttributes?.[DLQ_ATTRIBUTES.kind]?.StringValue, 'permanent');
      assert.equal(rig.exo.messages.length, delivered, 'the fake Exchange Online accepted a corrupted body');
    });
  }

  test('an intact S3 body is delivered byte for byte', async () => {
    const { result } = await deliverThroughS3(BODY, BODY);
    assert.equal(result, 'delivered');
    const captured = rig.exo.messages.at(-1);
    assert.equal(captured?.sha256, sha256(BODY));
    assert.deepEqual(await deadLetters(), []);
  });

  test('an inline body that differs from the envelope is dead-lettered before any SMTP', async () => {
    const envelope = { ...envelopeFor(BODY), sha256: sha256(Buffer.from('something else')) };
    const body = serializeQueueMessage({ schemaVersion: QUEUE_MESSAGE_SCHEMA_VERSION, envelope, body: { kind: 'inline', ...encodeInlineBody(BODY) } });
    const delivered = rig.exo.messages.length;
    const result = await handleQueueRecord({ messageId: 'sqs-inline', body, receiptHandle: 'unused', receiveCount: 1 }, deps);
    assert.equal(result, 'dead-lettered');
    const [letter] = await deadLetters();
    assert.match(letter?.MessageAttributes?.[DLQ_ATTRIBUTES.reason]?.StringValue ?? '', /has SHA-256 [0-9a-f]{64}, the envelope says [0-9a-f]{64}/);
    assert.equal(rig.exo.messages.length, delivered);
  });

  test('an inline gzip body that inflates beyond the envelope size is refused by the bound', async () => {
    const small = Buffer.from('From: a@contoso.com\r\n\r\nhi\r\n');
    const envelope = envelopeFor(small);
    const bomb = encodeInlineBody(Buffer.alloc(4 * 1024 * 1024, 'a'));
    assert.equal(bomb.encoding, 'gzip+base64');
    const body = serializeQueueMessage({ schemaVersion: QUEUE_MESSAGE_SCHEMA_VERSION, envelope, body: { kind: 'inline', ...bomb } });
    const result = await handleQueueRecord({ messageId: 'sqs-bomb', body, receiptHandle: 'unused', receiveCount: 1 }, deps);
    assert.equal(result, 'dead-lettered');
    const [letter] = await deadLetters();
    assert.match(letter?.MessageAttributes?.[DLQ_ATTRIBUTES.reason]?.StringValue ?? '', new RegExp(`inline body inflates beyond ${small.length} bytes`));
  });
});
