import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { inlineQueueMessage, serializeQueueMessage } from '../../contract/queueMessage.ts';
import type { DeliveryLogger } from '../../delivery/logger.ts';
import { upstreamConfigSchema } from '../../delivery/upstreamConfig.ts';
import type { RunningSqsPoller } from '../../functions/sqs-poller/startSqsPoller.ts';
import { startTestWorkers } from './testWorkers.ts';
import { startLocalDynamo, type LocalDynamo } from '../../testbed/aws/localDynamo.ts';
import { startLocalS3, type LocalS3 } from '../../testbed/aws/localS3.ts';
import { startLocalSqs, type LocalSqs } from '../../testbed/aws/localSqs.ts';
import { startExchangeOnlineRig, type ExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { scannerEnvelope, sha256Hex as sha256 } from '../../testbed/helpers/scannerEnvelope.ts';

/**
 * Issue 10's reproduction, scaled down to keep the run short: two `smarthost worker` pollers on one
 * queue with a visibility timeout and a ledger lease of 3 s (the issue's 10 s), and an upstream
 * that answers every SMTP command after 1.8 s (the issue's 6 s): one submission takes about
 * five visibility timeouts. A poller that did not hold its claim while it works lets the other
 * receive and claim the message once both ran out, and the message is delivered twice.
 */

const VISIBILITY_MS = 3_000;
const LEASE_MS = 3_000;
const COMMAND_DELAY_MS = 1_800;

const quiet: DeliveryLogger = { debug() {}, info() {}, warn() {}, error() {} };

describe('a slow upstream: two pollers, visibility and lease shorter than one submission', () => {
  let rig: ExchangeOnlineRig;
  let sqs: LocalSqs;
  let s3: LocalS3;
  let dynamo: LocalDynamo;
  const pollers: RunningSqsPoller[] = [];

  before(async () => {
    [rig, sqs, s3, dynamo] = await Promise.all([
      startExchangeOnlineRig({ commandDelayMs: COMMAND_DELAY_MS }),
      startLocalSqs({ visibilityTimeout: VISIBILITY_MS / 1000, maxReceiveCount: 10 }),
      startLocalS3(),
      startLocalDynamo(),
    ]);
    const upstream = upstreamConfigSchema.parse(rig.upstream());
    pollers.push(...(await startTestWorkers(2, { sqs, s3, dynamo }, upstream, { visibilityTimeout: VISIBILITY_MS, lease: LEASE_MS }, () => quiet)));
  });

  after(async () => {
    await Promise.all(pollers.map((poller) => poller.stop()));
    await Promise.all([rig?.close(), sqs?.stop(), s3?.stop(), dynamo?.stop()]);
  });

  test('the message is delivered exactly once', async () => {
    const body = Buffer.from('From: scanner@contoso.com\r\nSubject: slow upstream\r\n\r\nsent once\r\n');
    const envelope = scannerEnvelope(`slow-upstream-${process.pid}`, body);
    const started = Date.now();
    await sqs.client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl, MessageBody: serializeQueueMessage(inlineQueueMessage(envelope, body)) }));

    await rig.exo.waitForMessages(1, 45_000);
    // Deleted from the queue once handled: nobody can receive it again after that.
    await pollUntil(
      async () => {
        const { Attributes } = await sqs.client.send(
          new GetQueueAttributesCommand({ QueueUrl: sqs.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
        );
        return Attributes?.ApproximateNumberOfMessages === '0' && Attributes.ApproximateNumberOfMessagesNotVisible === '0';
      },
      45_000,
      'the message to leave the queue',
    );
    // Stopping waits for whatever a poller still delivers: a second copy would land now.
    await Promise.all(pollers.map((poller) => poller.stop()));
    const copies = rig.exo.messages.filter((m) => m.sha256 === sha256(body));
    process.stdout.write(`# slow upstream: ${copies.length} cop${copies.length === 1 ? 'y' : 'ies'} delivered in ${Date.now() - started} ms\n`);
    assert.equal(copies.length, 1, `delivered ${copies.length} times`);
  });
});
